// The lorafit CLI as a child process on the tiny llama fixture (vocab 256, byte-level tokenizer).
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { readSafetensors } from '../../lib/util/safetensors.js';
import { LLAMA, LLAMA_ADAPTER, ROOT, byteLevelLlama, ensureBuilt, runCli, tempDir } from './helpers.js';

const YODA = join(ROOT, 'test', 'fixtures', 'data', 'styles', 'yoda.txt');

describe('lorafit CLI', () => {
  let work: string;
  let model: string;
  let data: string;

  beforeAll(() => {
    ensureBuilt();
    work = tempDir();
    model = byteLevelLlama();
    data = join(work, 'yoda.txt');
    const lines = readFileSync(YODA, 'utf8').split('\n').filter((l) => l.trim()).slice(0, 12);
    writeFileSync(data, `${lines.join('\n')}\n`);
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('train: a YAML config with flags over it writes a PEFT adapter and reports the eval loss', async () => {
    const cfg = join(work, 'train.yaml');
    // snake_case keys in the file; --max-steps overrides max_steps.
    writeFileSync(cfg, `model: ${model}\ndataset: ${data}\nmax_steps: 500\nlora_rank: 4\nlearning_rate: 0.01\nbatch_size: 2\nmax_seq_length: 64\neval_split: 3\n`);
    const out = join(work, 'run');
    const log = join(work, 'train.log.jsonl');
    const r = await runCli(['train', cfg, '--max-steps', '5', '--output-dir', out, '--target-modules', 'q_proj,v_proj', '--log-file', log]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/9 train, 3 eval/);
    expect(r.stdout).toMatch(/training 5\/5 loss/);  // plain progress lines (stdout is a pipe)
    expect(r.stdout).toMatch(/trained 5 steps/);
    const m = /held-out NLL ([\d.]+) -> ([\d.]+) \((down|up) ([\d.]+)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(Number(m![2]));  // lr 1e-2 on 9 lines: the held-out loss drops
    const cfgJson = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(cfgJson).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] });
    const st = readSafetensors(join(out, 'adapter', 'adapter_model.safetensors'));
    expect([...st.tensors.keys()].sort()).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(st.tensors.size).toBe(2 * 2 * 2);  // 2 layers x (q, v) x (A, B)
    expect(existsSync(join(out, 'metrics.jsonl'))).toBe(true);
    const logLines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(logLines.some((l) => l.msg === 'train done')).toBe(true);
  });

  it('train --use-dora --loraplus-lr-ratio 16: a PEFT DoRA adapter (magnitudes saved), and info shows the variant', async () => {
    const out = join(work, 'run-dora');
    const r = await runCli(['train', '--model', model, '--dataset', data, '--max-steps', '3', '--output-dir', out, '--lora-rank', '2', '--target-modules', 'q_proj,v_proj',
      '--use-dora', '--loraplus-lr-ratio', '16', '--batch-size', '2', '--max-seq-length', '64', '--eval-split', '3']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/DoRA r=2/);
    const cfgJson = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(cfgJson).toMatchObject({ use_dora: true, r: 2 });
    const st = readSafetensors(join(out, 'adapter', 'adapter_model.safetensors'));
    expect([...st.tensors.keys()].filter((k) => k.endsWith('.lora_magnitude_vector'))).toHaveLength(4);  // 2 layers x (q, v)
    const info = await runCli(['info', model, '--adapter', join(out, 'adapter')]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/dora true/);
  });

  it('train --init-lora-weights pissa --convert-to-lora --modules-to-save lm_head: a rank-2r LoRA adapter with the head, equal on the untouched base to the last (unconverted) checkpoint; info shows the variant', async () => {
    const out = join(work, 'run-pissa');
    const r = await runCli(['train', '--model', model, '--dataset', data, '--max-steps', '2', '--save-steps', '2', '--output-dir', out, '--lora-rank', '2', '--target-modules', 'q_proj,v_proj',
      '--init-lora-weights', 'pissa', '--convert-to-lora', '--modules-to-save', 'lm_head', '--batch-size', '2', '--max-seq-length', '64', '--eval-split', '3', '--learning-rate', '0.01']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/LoRA r=2 alpha=4 init pissa on 4 modules \+ lm_head in full/);
    expect(r.stdout).toMatch(/converted to plain LoRA, rank 4, for the untouched base model/);
    const cfgJson = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(cfgJson).toMatchObject({ r: 4, lora_alpha: 8, init_lora_weights: true, modules_to_save: ['lm_head'] });
    const st = readSafetensors(join(out, 'adapter', 'adapter_model.safetensors'));
    expect(st.tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.shape).toEqual([4, 64]);
    expect(st.tensors.get('base_model.model.lm_head.weight')!.shape).toEqual([256, 64]);
    // the checkpoint holds the same step unconverted (init pissa: loading re-runs the SVD on the base)
    const ck = JSON.parse(readFileSync(join(out, 'checkpoint-2', 'adapter', 'adapter_config.json'), 'utf8'));
    expect(ck).toMatchObject({ r: 2, init_lora_weights: 'pissa' });
    const prompt = [[3, 40, 41, 42, 43, 44, 45]];
    const logits: Float32Array[] = [];
    for (const dir of [join(out, 'adapter'), join(out, 'checkpoint-2', 'adapter')]) {
      await using m = await Model.load(model);
      await LoraAdapter.load(m, dir);
      logits.push((await m.forward(prompt)).logits);
    }
    let worst = 0;
    for (let i = 0; i < logits[0].length; i++) worst = Math.max(worst, Math.abs(logits[0][i] - logits[1][i]));
    expect(worst).toBeLessThan(1e-4);
    const info = await runCli(['info', model, '--adapter', join(out, 'adapter')]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/r 4, lora_alpha 8, .*init true, target_modules \["q_proj","v_proj"\], modules_to_save \["lm_head"\]/);
    expect(info.stdout).toMatch(/ 4 modules, trainable parameters/);
    const ckInfo = await runCli(['info', model, '--adapter', join(out, 'checkpoint-2', 'adapter')]);
    expect(ckInfo.stdout).toMatch(/init "pissa"/);

    const bad = await runCli(['train', '--model', model, '--dataset', data, '--max-steps', '1', '--output-dir', join(work, 'run-bad-init'), '--init-lora-weights', 'svd']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/option 'initLoraWeights': must be 'kaiming', 'gaussian', 'pissa', 'pissa_niter_<N>', 'olora' or 'none', got "svd"/);
    const bad2 = await runCli(['train', '--model', model, '--dataset', data, '--max-steps', '1', '--output-dir', join(work, 'run-bad-convert'), '--convert-to-lora']);
    expect(bad2.code).toBe(1);
    expect(bad2.stderr).toMatch(/option 'convertToLora': applies to the pissa \/ olora inits, not to 'kaiming'/);
    const bad3 = await runCli(['train', '--model', model, '--dataset', data, '--max-steps', '1', '--output-dir', join(work, 'run-bad-mts'), '--modules-to-save', 'lm_head,score']);
    expect(bad3.code).toBe(1);
    expect(bad3.stderr).toMatch(/option 'modulesToSave': 'score'/);
  });

  it('train with no model and no dataset runs the default job; without SmolLM2 it falls back to the tiny model and says how to get it', async () => {
    const out = join(work, 'default-job');
    const r = await runCli(['train', '--max-steps', '3', '--output-dir', out], { env: { LORAFIT_SMOLLM2_GGUF: join(work, 'absent.gguf') }, timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^note: the default model SmolLM2-135M-Instruct is not at .*absent\.gguf; using the embedded .*lorafit-tiny.*Get the real one with: bash .*fetch-default-model\.sh$/m);
    expect(r.stdout).toContain("the default job: LoRA-tune lorafit-tiny to answer in Yoda's style");
    expect(r.stdout).toMatch(/dataset: 600 records from .*yoda\.txt; 568 train, 32 eval/);
    expect(r.stdout).toMatch(/held-out NLL before training: [\d.]+ per trained token \(32 examples/);
    expect(r.stdout).toMatch(/held-out NLL [\d.]+ -> [\d.]+ \((down|up)/);
    // The three held-out questions, each answered by the base and by the tuned model.
    for (const q of ['What is the moon?', 'How do plants grow?', 'Why do people need sleep?']) {
      expect(r.stdout).toMatch(new RegExp(`> ${q.replace('?', '\\?')}\nbase:  .+\ntuned: .+`));
    }
    expect(existsSync(join(out, 'adapter', 'adapter_model.safetensors'))).toBe(true);
  }, 200_000);

  it('train: an unknown or invalid config key exits 1 naming the key and what is allowed', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(bad, `model: ${model}\ndataset: ${data}\nlora_rnk: 4\n`);
    const r = await runCli(['train', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error \[E_CONFIG\]: unknown key 'lora_rnk' in .*bad\.yaml \(did you mean 'loraRank'\?\); allowed keys: model, dataset/);
    expect(r.stderr).not.toMatch(/\n\s+at /);  // no stack trace without --verbose
    const r2 = await runCli(['train', '--model', model, '--dataset', data, '--lr-scheduler', 'cosin']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain("error [E_CONFIG]: flag --lr-scheduler: must be one of constant, linear, cosine, got \"cosin\"");
    const r3 = await runCli(['train', '--model', model]);  // a model of one's own needs its data
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain("missing 'dataset'");
    const r4 = await runCli(['train', '--model', model, '--dataset', data, '--max-steps', 'many']);
    expect(r4.stderr).toContain('flag --max-steps: must be an integer, got "many"');
    const r5 = await runCli(['train', '--model', model, '--dataset', data, '--load-in-4bit', '--load-in-8bit']);
    expect(r5.code).toBe(1);
    expect(r5.stderr).toContain("'loadIn4bit' and 'loadIn8bit' exclude each other");
  });

  it('info prints the parameter count (from the headers, equal to the loaded model) and the adapter share', async () => {
    const loaded = await Model.load(LLAMA);
    const n = loaded.numParameters();
    await loaded.dispose();
    const r = await runCli(['info', LLAMA, '--adapter', LLAMA_ADAPTER]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`parameters:   ${n} `);
    expect(r.stdout).toMatch(/architecture: LlamaForCausalLM \(llama\)/);
    expect(r.stdout).toMatch(/trainable parameters \d+ .*% of/);
    const j = JSON.parse((await runCli(['info', LLAMA, '--adapter', LLAMA_ADAPTER, '--json'])).stdout);
    expect(j.parameters).toBe(n);
    expect(j.adapter.trainable).toBeGreaterThan(0);
  });

  it('train: --save-total-limit, --resume-from latest, --on-non-finite and --early-stopping-patience reach the Trainer; merge and prepare take --output-dir', async () => {
    const out = join(work, 'run-parity');
    const common = ['train', '--model', model, '--dataset', data, '--output-dir', out, '--lora-rank', '2', '--batch-size', '2', '--max-seq-length', '64', '--eval-split', '3', '--save-steps', '1', '--save-total-limit', '1'];
    const r = await runCli([...common, '--max-steps', '3', '--on-non-finite', 'skip', '--early-stopping-patience', '5']);
    expect(r.code, r.stderr).toBe(0);
    const checkpoints = () => readdirSync(out).filter((d) => d.startsWith('checkpoint-')).sort();
    expect(checkpoints()).toEqual(['checkpoint-3']);  // --save-total-limit 1 pruned checkpoints 1 and 2
    const again = await runCli([...common, '--max-steps', '5', '--resume-from', 'latest']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/trained 5 steps/);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.type === 'step').map((m) => m.step);
    expect(steps).toEqual([1, 2, 3, 4, 5]);  // the resumed run went on from step 3, not from 1
    const bad = await runCli([...common, '--on-non-finite', 'ignore']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/on-non-finite|onNonFinite/);
    const merged = join(work, 'merged-output-dir');
    const m = await runCli(['merge', '--model', model, '--adapter', join(out, 'adapter'), '--output-dir', merged]);
    expect(m.code, m.stderr).toBe(0);
    expect(existsSync(join(merged, 'config.json'))).toBe(true);
  });

  it('merge writes a folder that loads and computes what base + adapter compute', async () => {
    const out = join(work, 'merged');
    const r = await runCli(['merge', '--model', model, '--adapter', LLAMA_ADAPTER, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(join(out, 'config.json'))).toBe(true);
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(true);
    const ids = [[5, 17, 99, 200, 3]];
    const merged = await Model.load(out);
    const a = await merged.forward(ids);
    await merged.dispose();
    const base = await Model.load(LLAMA);
    await LoraAdapter.load(base, LLAMA_ADAPTER);
    const b = await base.forward(ids);
    await base.dispose();
    let maxDiff = 0;
    for (let i = 0; i < a.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.logits[i] - b.logits[i]));
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('generate and eval run on the model with an adapter', async () => {
    const g = await runCli(['generate', '--model', model, '--adapter', `yoda=${LLAMA_ADAPTER}`, '--prompt', 'Strong, ', '--max-new-tokens', '6']);
    expect(g.code).toBe(0);
    expect(g.stdout.startsWith('Strong, ')).toBe(true);
    expect(g.stderr).toMatch(/\[\d+ tokens, finish: (stop|length), adapter yoda\]/);
    const e = await runCli(['eval', '--model', model, '--adapter', `yoda=${LLAMA_ADAPTER}`, '--dataset', data, '--batch-size', '4']);
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^base: perplexity [\d.]+ \(mean NLL [\d.]+ nats\/token over \d+ tokens\)$/m);
    expect(e.stdout).toMatch(/^yoda: perplexity [\d.]+/m);
  });

  it('prepare markdown writes the SFT files', async () => {
    const out = join(work, 'prepared');
    const r = await runCli(['prepare', 'markdown', join(ROOT, 'test', 'fixtures', 'data', 'markdown-blog', 'en'), '--out', out, '--min-tokens', '40', '--max-tokens', '200']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['dataset_stats.json', 'sft_train.jsonl', 'sft_val.jsonl']);
    expect(r.stdout).toMatch(/records: \d+ train, \d+ val/);
  });

  it('a LorafitError prints `error [CODE]: message` and exits 1 (stack only with --verbose)', async () => {
    const r = await runCli(['merge', '--model', join(work, 'nope'), '--adapter', LLAMA_ADAPTER, '--out', join(work, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error \[E_[A-Z_]+\]: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const v = await runCli(['merge', '--model', join(work, 'nope'), '--adapter', LLAMA_ADAPTER, '--out', join(work, 'x'), '--verbose']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/\n\s+at /);
    const u = await runCli(['frobnicate']);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/error \[E_USAGE\]/);
  });
});
