// Reproduces the embedded default model (models/lorafit-tiny/): a ~2.4M-parameter Llama trained from
// scratch with the Trainer's full-parameter mode on public-domain Tang/Song poetry and the
// Leprechaun-style lines, with a byte-level BPE tokenizer trained on the same text.
//
//   npm run build:ts && LORAFIT_PYTHON=~/.cache/lorafit/venv/bin/python \
//     node dist/examples/default-model/pretrain.js [--steps 800] [--out models/lorafit-tiny]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model, Tokenizer, Trainer } from '../../lib/index.js';
import { fromFloat32, serializeSafetensors, type StTensor } from '../../lib/util/safetensors.js';
import { permutation, prng } from '../../lib/train/random.js';
import { poetryTexts, styleLines } from './corpus.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const root = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const dataDir = join(root, 'examples', 'data');
const outDir = resolve(arg('out', join(root, 'models', 'lorafit-tiny')));
const steps = Number(arg('steps', '800'));
const SEQ = 256;

// 1. corpus, shuffled with a fixed seed
const texts = [...poetryTexts(dataDir), ...styleLines(dataDir, 'leprechaun')];
const order = permutation(texts.length, 1234);
const corpus = order.map((i) => texts[i]);
const work = mkdtempSync(join(tmpdir(), 'lorafit-pretrain-'));
writeFileSync(join(work, 'corpus.txt'), corpus.join('\n\n'));

// 2. tokenizer (HF tokenizers' BPE trainer)
const python = process.env.LORAFIT_PYTHON ?? 'python3';
const initDir = join(work, 'init');
mkdirSync(initDir);
execFileSync(python, [join(root, 'examples', 'default-model', 'train-tokenizer.py'), join(work, 'corpus.txt'), initDir], { stdio: 'inherit' });
const tokenizer = await Tokenizer.fromDir(initDir);
const eos = tokenizer.tokenToId('<|endoftext|>')!;
const vocab = Math.ceil(tokenizer.vocabSize / 64) * 64;

// 3. random initial weights, as transformers initialises a Llama (N(0, 0.02), norms 1)
const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: vocab,
  hidden_size: 192,
  intermediate_size: 512,
  num_hidden_layers: 4,
  num_attention_heads: 3,
  num_key_value_heads: 1,
  head_dim: 64,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  bos_token_id: null,
  eos_token_id: eos,
  pad_token_id: eos,
  hidden_act: 'silu',
  torch_dtype: 'float32',
};
writeFileSync(join(initDir, 'config.json'), JSON.stringify(config, null, 2));
writeFileSync(join(initDir, 'generation_config.json'), JSON.stringify({ eos_token_id: eos, pad_token_id: eos, do_sample: false }, null, 2));
const rand = prng(42);
const normal = (n: number, std: number) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())) * std;
    const t = 2 * Math.PI * rand();
    a[i] = r * Math.cos(t);
    if (i + 1 < n) a[i + 1] = r * Math.sin(t);
  }
  return a;
};
const H = config.hidden_size, I = config.intermediate_size, q = config.num_attention_heads * config.head_dim, kv = config.num_key_value_heads * config.head_dim;
const tensors = new Map<string, StTensor>();
const put = (name: string, shape: number[], values?: Float32Array) => tensors.set(name, fromFloat32(values ?? normal(shape[0] * shape[1], 0.02), shape));
put('model.embed_tokens.weight', [vocab, H]);
for (let l = 0; l < config.num_hidden_layers; l++) {
  const p = `model.layers.${l}`;
  put(`${p}.self_attn.q_proj.weight`, [q, H]);
  put(`${p}.self_attn.k_proj.weight`, [kv, H]);
  put(`${p}.self_attn.v_proj.weight`, [kv, H]);
  put(`${p}.self_attn.o_proj.weight`, [H, q]);
  put(`${p}.mlp.gate_proj.weight`, [I, H]);
  put(`${p}.mlp.up_proj.weight`, [I, H]);
  put(`${p}.mlp.down_proj.weight`, [H, I]);
  tensors.set(`${p}.input_layernorm.weight`, fromFloat32(new Float32Array(H).fill(1), [H]));
  tensors.set(`${p}.post_attention_layernorm.weight`, fromFloat32(new Float32Array(H).fill(1), [H]));
}
tensors.set('model.norm.weight', fromFloat32(new Float32Array(H).fill(1), [H]));
writeFileSync(join(initDir, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));

// 4. pack the tokenized corpus into blocks of SEQ tokens (documents joined by eos)
const stream: number[] = [];
for (const t of corpus) stream.push(...(await tokenizer.encode(t, { addSpecialTokens: false })), eos);
const blocks: { inputIds: Int32Array; labels: Int32Array }[] = [];
for (let i = 0; i + SEQ <= stream.length; i += SEQ) {
  const ids = Int32Array.from(stream.slice(i, i + SEQ));
  blocks.push({ inputIds: ids, labels: ids });
}
const evalData = blocks.slice(0, 48);
const trainData = blocks.slice(48);
console.log(`corpus: ${texts.length} texts, ${stream.length} tokens (vocab ${tokenizer.vocabSize}), ${trainData.length} training blocks of ${SEQ}`);

// 5. full-parameter pretraining
const model = await Model.load(initDir);
console.log(`model: ${model.numParameters()} parameters`);
const trainer = new Trainer({
  model, fullParameter: true, trainData, evalData,
  learningRate: 2e-3, maxSteps: steps, batchSize: 16, lrScheduler: 'cosine', warmupSteps: 40,
  weightDecay: 0.01, evalSteps: 100, seed: 1, evalBatchSize: 16,
});
trainer.on('step', (s) => {
  if (s.step % 20 === 0) console.log(`step ${s.step}/${s.totalSteps} loss ${s.loss.toFixed(3)} ${Math.round(s.tokensPerSecond)} tok/s eta ${Math.round(s.etaMs / 1000)}s`);
});
trainer.on('eval', (e) => console.log(`eval ${e.step}: loss ${e.evalLoss.toFixed(3)} ppl ${e.perplexity.toFixed(1)}`));
const result = await trainer.fit();

// 6. save in bfloat16 with the tokenizer
await model.save(outDir, { dtype: 'bfloat16' });
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(initDir, f), join(outDir, f));
writeFileSync(join(outDir, 'training.json'), `${JSON.stringify({ steps, seq: SEQ, batchSize: 16, tokensSeen: steps * 16 * SEQ, evalLoss: result.evalLoss, parameters: model.numParameters(), corpus: 'examples/data: poetry/*.json + styles/leprechaun.txt (yoda held out)' }, null, 2)}\n`);
for (const prompt of ['床前明月光，', 'Top o\' the morning']) {
  const ids = await tokenizer.encode(prompt, { addSpecialTokens: false });
  const [out] = await model.generate(ids, { maxNewTokens: 40, repetitionPenalty: 1.2 });
  console.log(`${prompt} -> ${await tokenizer.decode(out, { skipSpecialTokens: true })}`);
}
await model.dispose();
rmSync(work, { recursive: true, force: true });
console.log(`saved ${outDir}`);
