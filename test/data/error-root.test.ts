// One error root: the data, eval and hub error classes are LorafitErrors with their own names,
// codes and extra fields.
import { describe, expect, it } from 'vitest';
import { LorafitError } from '../../lib/errors.js';
import { LorafitDataError } from '../../lib/data/errors.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';
import { HubError } from '../../lib/hub/errors.js';

describe('error root', () => {
  it('LorafitDataError is a LorafitError and keeps file, line, key and the located message', () => {
    const cause = new Error('inner');
    const e = new LorafitDataError('E_DATA_PARSE', 'bad quote', { file: 'a.csv', line: 3, key: 'text', cause });
    expect(e).toBeInstanceOf(LorafitError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('LorafitDataError');
    expect(e.code).toBe('E_DATA_PARSE');
    expect(e.message).toBe('a.csv:3, key "text": bad quote');
    expect([e.file, e.line, e.key, e.cause]).toEqual(['a.csv', 3, 'text', cause]);
    expect('cause' in new LorafitDataError('E_DATA_EMPTY', 'x')).toBe(false);
  });

  it('LorafitEvalError is a LorafitError and keeps status', () => {
    const e = new LorafitEvalError('E_JUDGE_HTTP', 'HTTP 500', { status: 500 });
    expect(e).toBeInstanceOf(LorafitError);
    expect(e.name).toBe('LorafitEvalError');
    expect(e.code).toBe('E_JUDGE_HTTP');
    expect(e.status).toBe(500);
  });

  it('HubError is a LorafitError and keeps status and repoId', () => {
    const e = new HubError('E_HUB_AUTH', 'no token', { status: 401, repoId: 'a/b' });
    expect(e).toBeInstanceOf(LorafitError);
    expect(e.name).toBe('HubError');
    expect([e.code, e.status, e.repoId]).toEqual(['E_HUB_AUTH', 401, 'a/b']);
  });
});
