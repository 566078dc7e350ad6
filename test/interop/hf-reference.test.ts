// Generation and forward options against the real transformers (test/interop/hf_reference.py) on
// the tiny HF fixtures: greedy tokens with repetition_penalty, and logits with explicit position_ids.
//
// position_ids: lorafit's positionIds move the rotary positions only. transformers agrees when it is
// given an attention mask; without one it reads positions that do not step by 1 as packed
// sequences and attends within each (DataCollatorWithFlattening), which lorafit's forward does not
// do, so the cases below pass an all-ones mask to transformers. (A uniform offset changes nothing
// under rotary embeddings, which see only position differences: the strided case is the one that
// shows the positions are used.)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../lib/model/model.js';
import { readSafetensors, toFloat32, toIntArray, type StFile } from '../../lib/util/safetensors.js';
import { Golden, HF, rows } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const NEW = 16;
const PENALTIES = [1.3, 0.7];

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe.each(['llama', 'qwen2'] as const)('%s against transformers', (arch) => {
  const golden = new Golden(arch);
  const prompt = golden.ints('gen.prompt');
  const repetitive = [5, 6, 7, 5, 6, 7, 5, 6];
  const ids = golden.ints('input_ids').slice(0, 16);  // the first golden row: 16 tokens
  const ones = ids.map(() => 1);
  const offset = ids.map((_, i) => i + 7);
  const strided = ids.map((_, i) => 3 * i + 1);
  const packed = [[...Array(8).keys(), ...Array(8).keys()], offset];
  let ref: StFile;
  let model: Model;

  beforeAll(async () => {
    const dir = scratchDir('hf-reference');
    const spec = [
      ...PENALTIES.flatMap((p) => [
        { kind: 'generate', name: `golden.${p}`, prompt, new: NEW, repetition_penalty: p },
        { kind: 'generate', name: `repetitive.${p}`, prompt: repetitive, new: NEW, repetition_penalty: p },
      ]),
      { kind: 'generate', name: 'golden.1', prompt, new: NEW, repetition_penalty: 1.0 },
      { kind: 'generate', name: 'repetitive.1', prompt: repetitive, new: NEW, repetition_penalty: 1.0 },
      { kind: 'forward', name: 'offset', input_ids: [ids], position_ids: [offset], attention_mask: [ones] },
      { kind: 'forward', name: 'strided', input_ids: [ids], position_ids: [strided], attention_mask: [ones] },
      { kind: 'forward', name: 'restart', input_ids: [ids, ids], position_ids: packed, attention_mask: [ones, ones] },
    ];
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    const out = join(dir, 'ref.safetensors');
    await runPython('hf_reference.py', ['--model', join(HF, arch, 'model'), '--spec', join(dir, 'spec.json'), '--out', out]);
    ref = readSafetensors(out);
    model = await Model.load(join(HF, arch, 'model'));
  }, 300_000);
  afterAll(async () => model?.dispose());

  const hfTokens = (name: string, p: number[]) => toIntArray(ref.tensors.get(`gen.${name}`)!).slice(p.length);

  it.each(PENALTIES)('greedy tokens with repetitionPenalty %s equal generate(repetition_penalty=...)', async (penalty) => {
    for (const [name, p] of [['golden', prompt], ['repetitive', repetitive]] as const) {
      const want = hfTokens(`${name}.${penalty}`, p);
      const [got] = await model.generate(p, { maxNewTokens: NEW, eosTokenId: [], repetitionPenalty: penalty });
      expect(got, `${name} prompt`).toEqual(want);
    }
    // The penalty changes an answer (else this test would not test it).
    const changed = [['golden', prompt], ['repetitive', repetitive]].some(([n, p]) => JSON.stringify(hfTokens(`${n}.${penalty}`, p as number[])) !== JSON.stringify(hfTokens(`${n}.1`, p as number[])));
    expect(changed).toBe(true);
  });

  it('forward with positionIds offset by 7, and strided by 3, equals transformers position_ids (1e-4)', async () => {
    const out = await model.forward([ids], { positionIds: [offset] });
    expect(maxAbsDiff(out.logits, toFloat32(ref.tensors.get('logits.offset')!))).toBeLessThan(1e-4);
    const s = await model.forward([ids], { positionIds: [strided] });
    expect(maxAbsDiff(s.logits, toFloat32(ref.tensors.get('logits.strided')!))).toBeLessThan(1e-4);
    // and differs from the default positions (the option was used)
    const plain = await model.forward([ids]);
    expect(maxAbsDiff(s.logits, plain.logits)).toBeGreaterThan(1e-3);
  });

  it('forward with per-row positionIds that restart equals transformers given an attention mask (1e-4)', async () => {
    const out = await model.forward(rows(ids.concat(ids), [2, 16]), { positionIds: packed });
    expect(maxAbsDiff(out.logits, toFloat32(ref.tensors.get('logits.restart')!))).toBeLessThan(1e-4);
  });
});
