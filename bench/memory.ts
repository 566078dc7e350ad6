// Peak resident memory for loading, and for LoRA training on, a Qwen2.5-0.5B-shaped model with a
// dense (fp32, bf16) or quantized (int8, nf4; compute bf16) base. One JSON line per case; every
// case runs in its own child process so the peaks do not mix.
//   npm run build:ts && node dist/bench/memory.js [modelDir] [--steps 3] [--seq 512] [--cases fp32,bf16,int8,nf4]
//       [--phases load,train] [--checkpointing]
// modelDir defaults to bench/out/qwen2.5-0.5b-random (made by bench/make-model.ts when missing).
// Training: LoRA r=16, alpha 32, all linear layers, batch 1, `seq` tokens, `steps` AdamW steps.
// peakRssMiB is getrusage's ru_maxrss (the process-lifetime peak, so the train case includes its load).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoraAdapter } from '../lib/lora/lora-adapter.js';
import { Model, type ModelLoadOptions } from '../lib/model/model.js';
import { Trainer } from '../lib/train/trainer.js';
import { makeModel } from './make-model.js';

const CASES: Record<string, ModelLoadOptions> = {
  fp32: { dtype: 'float32' },
  bf16: { dtype: 'bfloat16' },
  int8: { dtype: 'bfloat16', quantize: 'int8' },
  nf4: { dtype: 'bfloat16', quantize: 'nf4' },
};

const mib = (kib: number) => Math.round(kib / 1024);
const rssNowKiB = () => Math.round(process.memoryUsage().rss / 1024);

async function child(dir: string, name: string, phase: 'load' | 'train', steps: number, seq: number, checkpointing: boolean): Promise<void> {
  const t0 = Date.now();
  const model = await Model.load(dir, CASES[name]);
  const loadSeconds = (Date.now() - t0) / 1000;
  const report = await model.storageReport();
  const out: Record<string, unknown> = {
    case: name,
    phase,
    ...CASES[name],
    params: model.numParameters(),
    weightMiB: Math.round(report.totalBytes / 2 ** 20),
    linearBytesPerParam: Number((report.linearBytes / report.linearParams).toFixed(4)),
    loadSeconds,
  };
  if (phase === 'train') {
    const adapter = await LoraAdapter.create(model, { rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
    let s = 12345;
    const example = () => {
      const ids = new Int32Array(seq);
      for (let i = 0; i < seq; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        ids[i] = 3 + (s % 30000);
      }
      return { inputIds: ids, labels: Int32Array.from(ids) };
    };
    const trainData = Array.from({ length: steps }, example);
    const trainer = new Trainer({ model, adapter, trainData, batchSize: 1, maxSteps: steps, learningRate: 1e-4, seed: 1, gradientCheckpointing: checkpointing });
    const t1 = Date.now();
    const r = await trainer.fit();
    out.trainSeconds = (Date.now() - t1) / 1000;
    out.steps = r.globalStep;
    out.seq = seq;
    out.gradientCheckpointing = checkpointing;
    out.loraParams = [...(await adapter.tensors()).values()].reduce((n, t) => n + t.data.length, 0);
  }
  out.rssEndMiB = mib(rssNowKiB());
  out.peakRssMiB = mib(process.resourceUsage().maxRSS);
  await model.dispose();
  console.log(JSON.stringify(out));
}

function main(): void {
  const args = process.argv.slice(2);
  const opt = (name: string, fallback: string) => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  if (args[0] === '--child') {
    const [, dir, name, phase, steps, seq, ckpt] = args;
    child(dir, name, phase as 'load' | 'train', Number(steps), Number(seq), ckpt === '1').catch((e) => {
      console.error(e);
      process.exit(1);
    });
    return;
  }
  const steps = opt('--steps', '3');
  const seq = opt('--seq', '512');
  const cases = opt('--cases', Object.keys(CASES).join(',')).split(',');
  const phases = opt('--phases', 'load,train').split(',');
  const ckpt = args.includes('--checkpointing') ? '1' : '0';
  if (ckpt === '1') args.splice(args.indexOf('--checkpointing'), 1);
  const dir = resolve(args[0] ?? 'bench/out/qwen2.5-0.5b-random');
  if (!existsSync(resolve(dir, 'model.safetensors'))) makeModel({ out: dir });
  for (const phase of phases) {
    for (const name of cases) {
      if (!CASES[name]) throw new Error(`unknown case ${name} (${Object.keys(CASES).join(', ')})`);
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, name, phase, steps, seq, ckpt], {
        stdio: ['ignore', 'pipe', 'inherit'],
        encoding: 'utf8',
      });
      const line = r.stdout.trim().split('\n').pop();
      console.log(line && r.status === 0 ? line : JSON.stringify({ case: name, phase, error: `exit ${r.status ?? r.signal}` }));
    }
  }
}

main();
