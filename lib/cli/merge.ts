// `lorafit merge --model M --adapter A --out DIR [--dtype]`: fold the adapter into the base weights
// (PEFT's merge_and_unload) and write a plain Hugging Face folder (tokenizer files copied; for a
// GGUF base, config, generation config and tokenizer files built from its metadata).
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { LorafitError } from '../errors.js';
import { resolveModelPath } from '../hub/index.js';
import { LoraAdapter } from '../lora/lora-adapter.js';
import { Model, type Dtype } from '../model/model.js';
import { cliLogger, globalOptions, modelDir, reportModelWarnings, type GlobalArgs } from './common.js';

export const command = 'merge';
export const describe = 'Merge an adapter into the base model and save a Hugging Face folder';

export function builder(y: Argv) {
  return globalOptions(y)
    .option('model', { type: 'string', demandOption: true, describe: 'Base model: a Hugging Face folder, a .gguf file, ollama:NAME[:TAG] or a hub id' })
    .option('adapter', { type: 'string', demandOption: true, describe: 'PEFT adapter folder or hub id' })
    .option('out', { alias: 'output-dir', type: 'string', demandOption: true, describe: 'Output folder (--output-dir is the same)' })
    .option('dtype', { type: 'string', choices: ['float32', 'bfloat16', 'float16'], describe: "Storage dtype (default: the base model's torch_dtype)" })
    .option('max-shard-size', { type: 'number', describe: 'Largest shard in bytes (default 5e9)' });
}

interface MergeArgs extends GlobalArgs {
  model: string;
  adapter: string;
  out: string;
  dtype?: string;
  maxShardSize?: number;
}

export async function handler(argv: MergeArgs): Promise<void> {
  const log = cliLogger(argv, 'merge');
  const dir = await modelDir(argv.model);
  // Merge in float32 (no rounding of the delta), store in the requested dtype.
  const model = await Model.load(dir, { dtype: 'float32' });
  const warned = reportModelWarnings(model, log);
  try {
    const torchDtype = model.config.torchDtype;
    const dtype: Dtype = (argv.dtype as Dtype | undefined) ?? (['float32', 'bfloat16', 'float16'].includes(torchDtype) ? (torchDtype as Dtype) : 'float32');
    const adapter = await LoraAdapter.load(model, await resolveModelPath(argv.adapter), { name: 'merge' });
    const modules = adapter.modules.length;
    await adapter.mergeAndUnload();
    reportModelWarnings(model, log, warned);
    const out = resolve(argv.out);
    if (out === resolve(dir)) throw new LorafitError('E_OPTION', '--out must differ from the base model folder');
    await model.save(out, { dtype, maxShardSize: argv.maxShardSize });
    log.info({ out, dtype, modules }, 'merged');
    process.stdout.write(`merged ${modules} modules of ${argv.adapter} into ${argv.model}; wrote ${out} (${dtype})\n`);
  } finally {
    await model.dispose();
  }
}
