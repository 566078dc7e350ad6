// Dequantizes raw GGUF tensor bytes to float32 (native/gguf_quants.cc: bit-for-bit what gguf-py's
// gguf.quants.dequantize returns). Synchronous: for tests and tools, not for whole models.
import { fromNative } from '../errors.js';
import { native } from '../model/native.js';

/** `count` values of ggml type `type` (a ggml_type number); `data` must hold exactly their bytes. */
export function dequantizeGguf(data: Uint8Array, type: number, count: number): Float32Array {
  try {
    return native().ggufDequantize(data, type, count);
  } catch (e) {
    throw fromNative(e);
  }
}
