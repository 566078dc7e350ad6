// The one channel between lib/ and a native model. It owns the handle, runs calls one at a time
// (autograd state and adapters inside a native model are shared, so a model admits one native
// call in flight; the native side holds a mutex too), maps native errors to LorafitErrors, and
// owns the native objects made from the model (adapters, training states, generation sessions)
// so that disposing the model frees them too. Internal: the public API never exposes it.
import { fromNative, LorafitError } from '../errors.js';
import type { NativeModel } from './native.js';
import { Serial } from './serial.js';

/** A native object made from the model (NativeAdapter, NativeTrainState, NativeGeneration). */
type NativeChild = object;

/** @internal */
export class ModelChannel {
  #handle: NativeModel | undefined;
  readonly #serial = new Serial();
  /** Native children -> the lib/ object that owns each (a LoraAdapter, a Trainer, a stream). */
  readonly #children = new Map<NativeChild, object>();

  constructor(handle: NativeModel) {
    this.#handle = handle;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** A synchronous native call (names, config, creating a child). */
  sync<T>(fn: (handle: NativeModel) => T): T {
    const handle = this.#live();
    try {
      return fn(handle);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** An asynchronous native call on the model or one of its children, queued behind the others. */
  call<T>(fn: (handle: NativeModel) => Promise<T>): Promise<T> {
    const handle = this.#live();
    return this.#serial.run(() => fn(handle)).catch((e: unknown) => {
      throw fromNative(e);
    });
  }

  /** Resolves once every call queued so far has settled. */
  idle(): Promise<void> {
    return this.#serial.idle();
  }

  /** Records a native child (freed with the model unless released first) and the object that owns it. */
  own<C extends NativeChild>(child: C, owner: object): C {
    this.#children.set(child, owner);
    return child;
  }

  release(child: NativeChild): void {
    this.#children.delete(child);
  }

  /** The owners of the live children, e.g. every LoraAdapter of the model. */
  owners(): object[] {
    return [...this.#children.values()];
  }

  /** Frees the native model and its children after any call in flight. Idempotent. */
  async dispose(): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    this.#handle = undefined;  // first stage: no new calls
    await this.#serial.idle();
    // second stage: free what has a native buffer (adapters go with the model's layers)
    for (const child of this.#children.keys()) (child as { dispose?: () => void }).dispose?.();
    this.#children.clear();
    handle.dispose();
  }

  #live(): NativeModel {
    if (!this.#handle) throw new LorafitError('E_DISPOSED', 'this model was disposed');
    return this.#handle;
  }
}

const channels = new WeakMap<object, ModelChannel>();

/** @internal Binds a Model to its channel (Model's constructor). */
export function bindChannel(model: object, channel: ModelChannel): void {
  channels.set(model, channel);
}

/** @internal The channel of a Model; for lib/ (LoraAdapter, Trainer, generation, save) and tests only. */
export function channelOf(model: object): ModelChannel {
  const c = channels.get(model);
  if (!c) throw new LorafitError('E_INPUT', 'not a lorafit Model');
  return c;
}
