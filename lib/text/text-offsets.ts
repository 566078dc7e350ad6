/**
 * Offsets from the Rust `tokenizers` bindings count Unicode code points; JavaScript strings index
 * UTF-16 code units. Any character outside the Basic Multilingual Plane (most emoji, rare CJK
 * ideographs) is one code point but two code units, so offsets must be converted before slicing.
 */

/**
 * Map from code-point index to UTF-16 index for `text`: `map[cp]` is the UTF-16 offset of code
 * point `cp`, and `map[codePointCount]` is `text.length`.
 */
export function codePointToUtf16Map(text: string): Uint32Array {
  const map = new Uint32Array(text.length + 1);
  let cp = 0;
  for (let i = 0; i < text.length; i++) {
    map[cp++] = i;
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  map[cp] = text.length;
  return map.subarray(0, cp + 1);
}

/** Convert `[start, end)` code-point offsets to UTF-16 offsets, clamping out-of-range values. */
export function toUtf16Offsets(
  offsets: ReadonlyArray<ReadonlyArray<number>>,
  map: Uint32Array,
): Array<[number, number]> {
  const last = map.length - 1;
  return offsets.map(([start, end]) => [map[Math.min(start, last)], map[Math.min(end, last)]]);
}
