/**
 * Python string semantics that @huggingface/jinja (0.5.x) lacks and real chat templates rely on.
 *
 * `str.strip(chars)`, `lstrip(chars)` and `rstrip(chars)` ignore their argument in
 * @huggingface/jinja and always trim whitespace. Qwen3's template writes
 * `content.lstrip('\n')` and `reasoning_content.strip('\n')`, so an assistant reply that starts with
 * spaces renders differently from transformers (which uses jinja2). The same bug was reported and
 * fixed in huggingface/swift-jinja (#64/#65). We patch the three methods on the library's string
 * value class, reached through the public `Environment`, so every template renders like jinja2.
 * If a future version changes its internals the patch is skipped and the interop tests catch it.
 */
import { Environment } from '@huggingface/jinja';

const PATCHED = Symbol.for('lorafit.jinjaStripPatched');

type RuntimeValue = { type: string; value: unknown };
type Builtins = Map<string, unknown> & { [PATCHED]?: boolean };

let applied = false;

export function applyJinjaCompat(): void {
  if (applied) return;
  applied = true;
  const sample = new Environment().set('s', 'x') as unknown as RuntimeValue;
  const proto = Object.getPrototypeOf(sample) as object;
  const descriptor = Object.getOwnPropertyDescriptor(proto, 'builtins');
  const original = descriptor?.get;
  if (sample.type !== 'StringValue' || original === undefined) return;
  const StringValue = (proto as { constructor: new (v: string) => RuntimeValue }).constructor;
  const upper = (original.call(sample) as Builtins).get('upper') as { constructor: new (fn: unknown) => unknown };
  const FunctionValue = upper.constructor;

  Object.defineProperty(proto, 'builtins', {
    configurable: true,
    get(this: RuntimeValue) {
      const map = original.call(this) as Builtins;
      if (!map[PATCHED]) {
        const text = this.value as string;
        const make = (side: 'both' | 'start' | 'end') =>
          new FunctionValue((args: RuntimeValue[] = []) => {
            const chars = args[0];
            if (chars === undefined || chars.type === 'NullValue' || chars.type === 'UndefinedValue') {
              return new StringValue(side === 'both' ? text.trim() : side === 'start' ? text.trimStart() : text.trimEnd());
            }
            if (chars.type !== 'StringValue') throw new Error('strip arg must be None or str');
            return new StringValue(stripChars(text, chars.value as string, side));
          });
        map.set('strip', make('both'));
        map.set('lstrip', make('start'));
        map.set('rstrip', make('end'));
        map[PATCHED] = true;
      }
      return map;
    },
  });
}

/** Python's `str.strip(chars)`: remove any of the characters in `chars` from the chosen ends. */
export function stripChars(text: string, chars: string, side: 'both' | 'start' | 'end'): string {
  const set = new Set(Array.from(chars));
  const units = Array.from(text);
  let start = 0;
  let end = units.length;
  if (side !== 'end') while (start < end && set.has(units[start])) start++;
  if (side !== 'start') while (end > start && set.has(units[end - 1])) end--;
  return units.slice(start, end).join('');
}
