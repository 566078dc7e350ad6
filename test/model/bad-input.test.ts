// Broken model folders and bad arguments: every failure must be a LorafitError whose code is
// stable and whose message names the file and the tensor (or option) at fault, and the process
// must carry on (a good model loads and matches transformers afterwards).
import { rmSync, truncateSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rejects } from '../helpers/rejects.js';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model, setThreads } from '../../lib/model/model.js';
import { copyFolder, readRaw, rewriteHeader, rewriteJson, type RawHeader } from '../helpers/corrupt.js';
import { Golden, HF, maxAbsDiffMasked, rows } from '../helpers/golden.js';

const LLAMA = join(HF, 'llama', 'model');
const SHARDED = join(HF, 'llama', 'model_sharded');
const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(dirname(d), { recursive: true, force: true });
});

function copy(src = LLAMA): string {
  const d = copyFolder(src, 'bad-input');
  scratch.push(d);
  return d;
}


type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
const entry = (h: RawHeader, name: string) => h[name] as Entry;

describe('corrupt safetensors', () => {
  it('(helper check) an identity header rewrite still loads and matches transformers', async () => {
    const dir = copy();
    rewriteHeader(join(dir, 'model.safetensors'), () => undefined);
    await using m = await Model.load(dir);
    const golden = new Golden('llama');
    const mask = golden.ints('attention_mask');
    const out = await m.forward(rows(golden.ints('input_ids'), [2, 16]), { attentionMask: rows(mask, [2, 16]) });
    expect(maxAbsDiffMasked(out.logits, golden.floats('base.logits'), mask, 256)).toBeLessThan(1e-4);
  });

  it('a file cut inside the data names the file and the first tensor that no longer fits', async () => {
    const dir = copy();
    const file = join(dir, 'model.safetensors');
    const { header } = readRaw(file);
    const headerBytes = statSync(file).size - 427264;
    // keep everything up to 100 bytes into model.norm.weight (the last tensor, [427008, 427264])
    truncateSync(file, headerBytes + entry(header, 'model.norm.weight').data_offsets[0] + 100);
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, "tensor 'model.norm.weight'", 'outside the data section', 'truncated');
  });

  it('a file cut inside the header, or shorter than the length field, is refused', async () => {
    const dir = copy();
    const file = join(dir, 'model.safetensors');
    truncateSync(file, 1000);
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, 'runs past the end of the file (1000 bytes)');
    truncateSync(file, 5);
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, 'truncated: 5 bytes');
    truncateSync(file, 0);
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, 'truncated: 0 bytes');
  });

  it('a header length field beyond the file (or beyond 100 MB) is refused', async () => {
    const dir = copy();
    const file = join(dir, 'model.safetensors');
    const size = statSync(file).size;
    rewriteHeader(file, () => undefined, { lengthField: BigInt(size) });
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, `header length ${size} runs past the end of the file (${size} bytes)`);
    const d2 = copy();
    rewriteHeader(join(d2, 'model.safetensors'), () => undefined, { lengthField: 0xffff_ffff_ffff_fff0n });
    await rejects(Model.load(d2), 'E_SAFETENSORS', 'exceeds the 100 MB limit');
  });

  it('tensor offsets outside the data section name the tensor', async () => {
    const dir = copy();
    const file = join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => {
      entry(h, 'model.layers.1.self_attn.q_proj.weight').data_offsets = [427264, 427264 + 16384];
    });
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, "tensor 'model.layers.1.self_attn.q_proj.weight'", '[427264, 443648] lie outside the data section (427264 bytes)');
  });

  it('offsets that disagree with dtype x shape, begin > end, negative or fractional offsets are refused', async () => {
    const cases: [(e: Entry) => void, string][] = [
      [(e) => { e.data_offsets = [e.data_offsets[0], e.data_offsets[1] - 4]; }, 'holds 16380 bytes but F32 [64, 64] needs 16384'],
      [(e) => { e.data_offsets = [e.data_offsets[1], e.data_offsets[0]]; }, 'begin > end'],
      [(e) => { e.data_offsets = [-16384, 0]; }, 'data_offsets must be non-negative integers'],
      [(e) => { e.data_offsets = [0.5, 16384.5]; }, 'data_offsets must be non-negative integers'],
      [(e) => { e.dtype = 'F8_E4M3'; }, "unsupported dtype 'F8_E4M3'"],
      [(e) => { e.shape = [64, -64]; }, 'shape entries must be non-negative integers'],
    ];
    for (const [edit, msg] of cases) {
      const dir = copy();
      const file = join(dir, 'model.safetensors');
      rewriteHeader(file, (h) => edit(entry(h, 'model.layers.0.self_attn.q_proj.weight')));
      await rejects(Model.load(dir), 'E_SAFETENSORS', file, "tensor 'model.layers.0.self_attn.q_proj.weight'", msg);
    }
  });

  it('a shape whose element count overflows 64 bits is refused, not read as 0 bytes', async () => {
    // [2^40, 2^40] F32: 2^80 elements wrap to 0 in uint64, so [0, 0] offsets looked consistent and a
    // view over it would claim 2^80 floats of a 0-byte buffer
    for (const shape of [[2 ** 40, 2 ** 40], [2 ** 32, 2 ** 32, 2 ** 32], [2 ** 26, 2 ** 26]]) {
      const dir = copy();
      const file = join(dir, 'model.safetensors');
      rewriteHeader(file, (h) => {
        h.evil = { dtype: 'F32', shape, data_offsets: [0, 0] };
      });
      await rejects(Model.load(dir), 'E_SAFETENSORS', file, "tensor 'evil'", 'shape is absurdly large');
    }
  });

  it('overlapping tensors name both tensors', async () => {
    const dir = copy();
    const file = join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => {
      // q_proj [64, 64] laid over o_proj's bytes (both 16384 bytes)
      entry(h, 'model.layers.0.self_attn.q_proj.weight').data_offsets = [...entry(h, 'model.layers.0.self_attn.o_proj.weight').data_offsets];
    });
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, "'model.layers.0.self_attn.o_proj.weight' and 'model.layers.0.self_attn.q_proj.weight' overlap");
    // a partial overlap (shifted by 4 bytes into the neighbour) too
    const d2 = copy();
    rewriteHeader(join(d2, 'model.safetensors'), (h) => {
      const e = entry(h, 'model.layers.0.self_attn.q_proj.weight');
      e.data_offsets = [e.data_offsets[0] - 4, e.data_offsets[1] - 4];
    });
    await rejects(Model.load(d2), 'E_SAFETENSORS', "'model.layers.0.self_attn.o_proj.weight' and 'model.layers.0.self_attn.q_proj.weight' overlap");
  });

  it('a header that is not JSON, or not an object, or with a bad entry, is refused with the file name', async () => {
    const cases: [string, string][] = [
      ['{"a": ', 'header is not valid JSON'],
      ['[1, 2, 3]', 'header is not a JSON object'],
      ['{"__metadata__": {"format": 5}}', '__metadata__.format is not a string'],
      ['{"x": {"dtype": "F32", "shape": [1]}}', "tensor 'x': entry needs dtype (string), shape (array) and data_offsets"],
      ['{"x": 7}', "tensor 'x': entry needs"],
    ];
    for (const [json, msg] of cases) {
      const dir = copy();
      const file = join(dir, 'model.safetensors');
      const { data } = readRaw(file);
      const h = Buffer.from(json);
      const out = Buffer.alloc(8 + h.length + data.length);
      out.writeBigUInt64LE(BigInt(h.length), 0);
      h.copy(out, 8);
      data.copy(out, 8 + h.length);
      writeFileSync(file, out);
      await rejects(Model.load(dir), 'E_SAFETENSORS', file, msg);
    }
  });

  it('a weight missing from the file names the weight', async () => {
    const dir = copy();
    rewriteHeader(join(dir, 'model.safetensors'), (h) => {
      delete h['model.layers.1.mlp.up_proj.weight'];
    });
    await rejects(Model.load(dir), 'E_SAFETENSORS', dir, "weight 'model.layers.1.mlp.up_proj.weight' is missing");
  });

  it('a weight stored as an integer dtype is refused by name', async () => {
    const dir = copy();
    const file = join(dir, 'model.safetensors');
    rewriteHeader(file, (h) => {
      entry(h, 'model.norm.weight').dtype = 'I32';  // same item size, so the header itself is consistent
    });
    await rejects(Model.load(dir), 'E_SAFETENSORS', file, "weight 'model.norm.weight' has dtype I32, expected a floating type");
  });
});

describe('sharded checkpoints', () => {
  it('a shard listed in model.safetensors.index.json but missing is named', async () => {
    const dir = copy(SHARDED);
    unlinkSync(join(dir, 'model-00002-of-00003.safetensors'));
    await rejects(Model.load(dir), 'E_SAFETENSORS', join(dir, 'model.safetensors.index.json'), "lists shard 'model-00002-of-00003.safetensors', which is missing");
  });

  it('an index pointing outside the folder, or a tensor in two shards, is refused', async () => {
    const dir = copy(SHARDED);
    const index = join(dir, 'model.safetensors.index.json');
    rewriteJson(index, (j) => {
      (j.weight_map as Record<string, string>)['model.norm.weight'] = '../model/model.safetensors';
    });
    await rejects(Model.load(dir), 'E_SAFETENSORS', index, "shard name '../model/model.safetensors' must be a plain file name");
    const d2 = copy(SHARDED);
    // shard 1 also claims lm_head.weight (which lives in shard 3): give it a zero-size alias entry
    rewriteHeader(join(d2, 'model-00001-of-00003.safetensors'), (h) => {
      h['lm_head.weight'] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
    });
    await rejects(Model.load(d2), 'E_SAFETENSORS', "tensor 'lm_head.weight' appears in two shards");
  });

  it('a corrupt shard is named (not the index)', async () => {
    const dir = copy(SHARDED);
    const shard = join(dir, 'model-00003-of-00003.safetensors');
    truncateSync(shard, statSync(shard).size - 1);
    await rejects(Model.load(dir), 'E_SAFETENSORS', shard, "tensor '", 'outside the data section');
  });
});

describe('config.json', () => {
  it('an unknown model_type lists the supported ones', async () => {
    const dir = copy();
    rewriteJson(join(dir, 'config.json'), (j) => {
      j.model_type = 'gpt_neox';
    });
    await rejects(Model.load(dir), 'E_MODEL_CONFIG', join(dir, 'config.json'), "model_type 'gpt_neox' is not supported", 'llama, mistral, qwen2, gemma, gemma2');
  });

  it('hidden_size changed in config.json: the first weight that disagrees is named with both shapes', async () => {
    const dir = copy();
    rewriteJson(join(dir, 'config.json'), (j) => {
      j.hidden_size = 96;
    });
    await rejects(Model.load(dir), 'E_SHAPE', join(dir, 'model.safetensors'), "weight 'model.embed_tokens.weight' has shape [256, 64] but config.json implies [256, 96]");
  });

  it("a tensor's shape rewritten in the header (same byte count) is named", async () => {
    const dir = copy();
    rewriteHeader(join(dir, 'model.safetensors'), (h) => {
      entry(h, 'model.layers.1.self_attn.k_proj.weight').shape = [64, 32];
    });
    await rejects(Model.load(dir), 'E_SHAPE', "weight 'model.layers.1.self_attn.k_proj.weight' has shape [64, 32] but config.json implies [32, 64]");
  });

  it('invalid values in config.json name the key', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ vocab_size: 0 }, "key 'vocab_size' must be positive"],
      [{ hidden_size: 64.5 }, "key 'hidden_size' must be an integer"],
      [{ num_key_value_heads: 3 }, "key 'num_key_value_heads' (3) must divide num_attention_heads (4)"],
      [{ tie_word_embeddings: 'no' }, "key 'tie_word_embeddings' must be true or false"],
      [{ hidden_act: 'relu' }, "key 'hidden_act' is 'relu'"],
      [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, "rope_type 'yarn'"],
      // values beyond int64 used to be cast (undefined behaviour) to INT64_MIN: a negative vocab,
      // a cryptic libtorch arange error for hidden_size, or an out-of-memory for the layer count
      [{ hidden_size: 1e30 }, "key 'hidden_size' is 1e+30, out of range"],
      [{ vocab_size: 1e30 }, "key 'vocab_size' is 1e+30, out of range"],
      [{ num_hidden_layers: 1e12 }, "key 'num_hidden_layers' is 1000000000000, out of range"],
      [{ pad_token_id: -1e20 }, "key 'pad_token_id' is -100000000000000000000, out of range"],
    ];
    for (const [patch, msg] of cases) {
      const dir = copy();
      rewriteJson(join(dir, 'config.json'), (j) => ({ ...j, ...patch }));
      await rejects(Model.load(dir), 'E_MODEL_CONFIG', join(dir, 'config.json'), msg);
    }
    const dir = copy();
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama",');
    await rejects(Model.load(dir), 'E_MODEL_CONFIG', join(dir, 'config.json'), 'not valid JSON');
    unlinkSync(join(dir, 'config.json'));
    await rejects(Model.load(dir), 'E_MODEL_CONFIG', join(dir, 'config.json'), 'cannot read config.json');
  });

  it('num_hidden_layers far beyond the checkpoint names the first missing layer weight (not out of memory)', async () => {
    const dir = copy();
    rewriteJson(join(dir, 'config.json'), (j) => {
      j.num_hidden_layers = 1e8;
    });
    await rejects(Model.load(dir), 'E_SAFETENSORS', dir, "weight 'model.layers.2.self_attn.q_proj.weight' is missing from the checkpoint");
  });

  it('a missing lm_head with tie_word_embeddings false says so', async () => {
    const dir = copy();
    rewriteHeader(join(dir, 'model.safetensors'), (h) => {
      delete h['lm_head.weight'];
    });
    await rejects(Model.load(dir), 'E_SAFETENSORS', dir, "tie_word_embeddings is false, but 'lm_head.weight' is missing");
    // with tie_word_embeddings true the same file loads (lm_head = embed_tokens)
    rewriteJson(join(dir, 'config.json'), (j) => {
      j.tie_word_embeddings = true;
    });
    await using m = await Model.load(dir);
    expect(m.config.tieWordEmbeddings).toBe(true);
  });
});

describe('folders without safetensors', () => {
  it('a pickle-only folder (pytorch_model.bin) is refused with E_PICKLE and a conversion hint', async () => {
    const dir = copy();
    unlinkSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'pytorch_model.bin'), Buffer.from('PK\x03\x04 not really a zip'));
    await rejects(Model.load(dir), 'E_PICKLE', dir, 'pytorch_model.bin', 'safe_serialization=True');
  });

  it('a folder with neither names what it looked for; a missing folder is E_MODEL_DIR', async () => {
    const dir = copy();
    unlinkSync(join(dir, 'model.safetensors'));
    await rejects(Model.load(dir), 'E_SAFETENSORS', dir, 'no model.safetensors or model.safetensors.index.json');
    await rejects(Model.load(join(dir, 'nope')), 'E_MODEL_DIR', join(dir, 'nope'), 'is not a folder');
    await rejects(Model.load(join(dir, 'config.json')), 'E_MODEL_DIR', 'is not a folder');
  });
});

describe('options and calls', () => {
  it('bad option values are E_OPTION naming the option', async () => {
    await rejects(Model.load(LLAMA, { dtype: 'float64' as never }), 'E_OPTION', "option 'dtype'", "'float64'");
    await rejects(Model.load(LLAMA, { device: 'tpu' }), 'E_OPTION', "option 'device'", "'tpu'");
    await rejects(Model.load(LLAMA, { device: 'cuda:x' }), 'E_OPTION', "option 'device'");
    await rejects(Model.load(LLAMA, { threads: 0 }), 'E_OPTION', "option 'threads'");
    await rejects(Model.load(LLAMA, { threads: 1.5 }), 'E_OPTION', "option 'threads'");
    await rejects(Model.load(LLAMA, { threads: -2 }), 'E_OPTION', "option 'threads'");
    await rejects(() => setThreads(0), 'E_OPTION', "option 'threads'");
  });

  it('calls after dispose are E_DISPOSED; dispose twice is fine', async () => {
    const m = await Model.load(LLAMA);
    await m.dispose();
    await m.dispose();
    expect(m.disposed).toBe(true);
    await rejects(m.forward([[1, 2, 3]]), 'E_DISPOSED', 'disposed');
    await rejects(m.lossAndGrad([{ inputIds: [[1, 2, 3]], labels: [[1, 2, 3]] }]), 'E_DISPOSED');
    await rejects(m.evalLoss([{ inputIds: [[1, 2, 3]], labels: [[1, 2, 3]] }]), 'E_DISPOSED');
    await rejects(m.parameter('model.norm.weight'), 'E_DISPOSED');
    await rejects(() => m.parameterNames(), 'E_DISPOSED');
    await rejects(() => m.numParameters(), 'E_DISPOSED');
  });

  it('dispose while a forward is in flight: the forward finishes, later calls are E_DISPOSED', async () => {
    const m = await Model.load(LLAMA);
    const ids = Array.from({ length: 4 }, (_, b) => Array.from({ length: 64 }, (_, t) => (b * 31 + t * 7) % 256));
    const pending = m.forward(ids);
    const disposing = m.dispose();
    const r = await pending;
    await disposing;
    expect(r.shape).toEqual([4, 64, 256]);
    expect(r.logits.every(Number.isFinite)).toBe(true);
    await rejects(m.forward([[1]]), 'E_DISPOSED');
  });

  it('token ids outside [0, vocab) are E_INPUT naming the range; the model still works afterwards', async () => {
    await using m = await Model.load(LLAMA);
    await rejects(m.forward([[1, 2, 256]]), 'E_INPUT', 'token id outside [0, 256)');
    await rejects(m.forward([[1, -1, 2]]), 'E_INPUT', 'token id outside [0, 256)');
    await rejects(m.forward([[1, 2 ** 31 - 1]]), 'E_INPUT', 'token id outside [0, 256)');
    await LoraAdapter.create(m, { rank: 2 });  // lossAndGrad needs an active adapter
    await rejects(m.lossAndGrad([{ inputIds: [[1, 2, 300]], labels: [[1, 2, 3]] }]), 'E_INPUT', 'outside [0, 256)');
    await rejects(m.evalLoss([{ inputIds: [[1, 2, 300]], labels: [[1, 2, 3]] }]), 'E_INPUT', 'outside [0, 256)');
    // labels beyond the vocab (other than -100) must not reach the loss kernel unchecked either
    await rejects(m.lossAndGrad([{ inputIds: [[1, 2, 3]], labels: [[1, 2, 999]] }]), 'E_INPUT', 'labels hold a token id outside [0, 256)');
    await rejects(m.forward([[1, 2], [3]]), 'E_SHAPE', 'row 1 has 1 ids but row 0 has 2');
    await rejects(m.forward([[1, 2, 3]], { attentionMask: [[1, 1]] }), 'E_SHAPE', 'attentionMask has shape [1, 2] but inputIds has [1, 3]');
    await rejects(m.forward([]), 'E_INPUT', 'inputIds is empty');
    await LoraAdapter.disableAll(m);
    const golden = new Golden('llama');
    const mask = golden.ints('attention_mask');
    const out = await m.forward(rows(golden.ints('input_ids'), [2, 16]), { attentionMask: rows(mask, [2, 16]) });
    expect(maxAbsDiffMasked(out.logits, golden.floats('base.logits'), mask, 256)).toBeLessThan(1e-4);
  });
});

it('after all of the above the process still loads the fixture and matches transformers', async () => {
  await using m = await Model.load(LLAMA);
  const golden = new Golden('llama');
  const mask = golden.ints('attention_mask');
  const out = await m.forward(rows(golden.ints('input_ids'), [2, 16]), { attentionMask: rows(mask, [2, 16]) });
  expect(maxAbsDiffMasked(out.logits, golden.floats('base.logits'), mask, 256)).toBeLessThan(1e-4);
});
