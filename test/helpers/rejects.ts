// Asserting rejections with a stable error code.
import { expect } from 'vitest';
import { LorafitError } from '../../lib/errors.js';

/** Awaits a rejection and checks it is a LorafitError with `code` whose message holds every `parts`. */
export async function rejects(p: Promise<unknown> | (() => unknown), code: string, ...parts: (string | RegExp)[]): Promise<LorafitError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a rejection').toBeInstanceOf(LorafitError);
  const e = err as LorafitError;
  expect(e.code, e.message).toBe(code);
  for (const part of parts) {
    if (typeof part === 'string') expect(e.message).toContain(part);
    else expect(e.message).toMatch(part);
  }
  return e;
}
