// Runs async calls one at a time: autograd state and adapters inside a native model are shared,
// so a model admits one native call in flight (the native side holds a mutex too).
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves when every call queued so far has settled. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
