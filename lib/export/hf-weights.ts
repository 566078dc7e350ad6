// Lazy access to an HF model folder's safetensors weights (single file or sharded with
// model.safetensors.index.json): headers are parsed up front, each tensor is read with a
// positioned read only when the exporter asks for it, so a multi-GB model is never whole in memory.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { LorafitError } from '../errors.js';
import { toFloat32, type StDtype } from '../util/safetensors.js';

export interface WeightInfo {
  name: string;
  dtype: StDtype;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  nbytes: number;
}

const FLOAT_DTYPES = new Set<StDtype>(['F32', 'F16', 'BF16', 'F64']);

export class HfWeights {
  readonly infos = new Map<string, WeightInfo>();

  private constructor(readonly dir: string) {}

  static open(dir: string): HfWeights {
    const w = new HfWeights(dir);
    const index = join(dir, 'model.safetensors.index.json');
    const single = join(dir, 'model.safetensors');
    let files: string[];
    if (existsSync(index)) {
      let map: Record<string, string>;
      try {
        map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
      } catch (e) {
        throw new LorafitError('E_EXPORT', `${index}: not a valid safetensors index (${(e as Error).message})`);
      }
      files = [...new Set(Object.values(map))].map((f) => join(dir, f));
    } else if (existsSync(single)) {
      files = [single];
    } else {
      throw new LorafitError('E_EXPORT', `${dir}: no model.safetensors or model.safetensors.index.json (pytorch .bin checkpoints are not supported)`);
    }
    for (const f of files) w.readHeader(f);
    return w;
  }

  private readHeader(file: string): void {
    const fd = openSync(file, 'r');
    try {
      const lenBuf = Buffer.alloc(8);
      if (readSync(fd, lenBuf, 0, 8, 0) !== 8) throw new LorafitError('E_EXPORT', `${file}: truncated safetensors file`);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > 100 * 1024 * 1024) throw new LorafitError('E_EXPORT', `${file}: safetensors header of ${headerLen} bytes is implausible`);
      const hb = Buffer.alloc(headerLen);
      readSync(fd, hb, 0, headerLen, 8);
      const header = JSON.parse(hb.toString('utf8')) as Record<string, { dtype: StDtype; shape: number[]; data_offsets: [number, number] }>;
      for (const [name, e] of Object.entries(header)) {
        if (name === '__metadata__') continue;
        this.infos.set(name, {
          name,
          dtype: e.dtype,
          shape: e.shape,
          file,
          offset: 8 + headerLen + e.data_offsets[0],
          nbytes: e.data_offsets[1] - e.data_offsets[0],
        });
      }
    } finally {
      closeSync(fd);
    }
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  info(name: string): WeightInfo {
    const i = this.infos.get(name);
    if (!i) throw new LorafitError('E_EXPORT', `${this.dir}: tensor '${name}' not found in the checkpoint`);
    return i;
  }

  /** The tensor's values as float32 (from F32/F16/BF16/F64). */
  read(name: string): Float32Array {
    const i = this.info(name);
    if (!FLOAT_DTYPES.has(i.dtype)) {
      throw new LorafitError('E_EXPORT', `${i.file}: tensor '${name}' has dtype ${i.dtype}; only F32/F16/BF16/F64 weights can be exported (dequantize or merge first)`);
    }
    const buf = new Uint8Array(i.nbytes);
    const fd = openSync(i.file, 'r');
    try {
      let off = 0;
      while (off < i.nbytes) {
        const n = readSync(fd, buf, off, i.nbytes - off, i.offset + off);
        if (n <= 0) throw new LorafitError('E_EXPORT', `${i.file}: tensor '${name}' is truncated`);
        off += n;
      }
    } finally {
      closeSync(fd);
    }
    return toFloat32({ dtype: i.dtype, shape: i.shape, bytes: buf });
  }
}
