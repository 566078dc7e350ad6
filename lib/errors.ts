// One error class for the whole library. `code` is stable (E_SAFETENSORS, E_MODEL_CONFIG, E_SHAPE,
// E_OPTION, E_DISPOSED, ...): branch on it, not on the message.
export class LorafitError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LorafitError';
    this.code = code;
  }
}

/** Re-creates a native rejection as a LorafitError at the JS call site (the native stack is useless). */
export function fromNative(e: unknown): LorafitError {
  if (e instanceof LorafitError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : 'E_NATIVE';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return new LorafitError(code, message, { cause: e });
}

export function optionError(option: string, message: string): LorafitError {
  return new LorafitError('E_OPTION', `option '${option}': ${message}`);
}
