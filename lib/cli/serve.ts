// `lorafit serve --model M [--adapter name=dir ...] [--host 127.0.0.1] [--port 8000]
// [--max-queue 16] [--max-body-bytes N]`: an OpenAI-compatible server (see openai-server.ts).
// `--port 0` picks a free port; the address is printed as `listening on http://HOST:PORT/v1`.
import type { Argv } from 'yargs';
import { LorafitError } from '../errors.js';
import { cliLogger, globalOptions, loadAdapters, modelName, modelOptions, openModel, parseAdapterSpecs, type GlobalArgs, type ModelArgs } from './common.js';
import { createOpenAiServer } from './openai-server.js';

export const command = 'serve';
export const describe = 'OpenAI-compatible server: /v1/chat/completions, /v1/completions (SSE streaming), /v1/models';

export function builder(y: Argv) {
  return modelOptions(globalOptions(y))
    .option('model', { type: 'string', demandOption: true, describe: 'Model folder or hub id' })
    .option('adapter', { type: 'string', array: true, describe: 'Adapters as name=dir (or dir); a request picks one with its "model" field' })
    .option('model-name', { type: 'string', describe: "Id of the base model in requests (default: the hub id or the folder's name)" })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
    .option('port', { type: 'number', default: 8000, describe: 'Port (0: any free port)' })
    .option('max-tokens', { type: 'number', default: 256, describe: 'max_tokens when a request gives none (always capped at the context left after the prompt)' })
    .option('max-queue', { type: 'number', default: 16, describe: 'Requests that may wait behind the running one; one more is answered 503' })
    .option('max-body-bytes', { type: 'number', default: 16 * 1024 * 1024, describe: 'Largest request body; a larger one is answered 413' });
}

interface ServeArgs extends GlobalArgs, ModelArgs {
  model: string;
  adapter?: string[];
  modelName?: string;
  host: string;
  port: number;
  maxTokens: number;
  maxQueue: number;
  maxBodyBytes: number;
}

export async function handler(argv: ServeArgs): Promise<void> {
  const log = cliLogger(argv, 'serve');
  if (!Number.isInteger(argv.port) || argv.port < 0 || argv.port > 65535) throw new LorafitError('E_OPTION', `--port must be 0-65535, got ${argv.port}`);
  if (!Number.isInteger(argv.maxQueue) || argv.maxQueue < 0) throw new LorafitError('E_OPTION', `--max-queue must be a non-negative integer, got ${argv.maxQueue}`);
  if (!Number.isInteger(argv.maxBodyBytes) || argv.maxBodyBytes < 1) throw new LorafitError('E_OPTION', `--max-body-bytes must be a positive integer, got ${argv.maxBodyBytes}`);
  const specs = parseAdapterSpecs(argv.adapter);
  const baseName = argv.modelName ?? modelName(argv.model);
  if (specs.some((s) => s.name === baseName)) throw new LorafitError('E_OPTION', `adapter name '${baseName}' is the base model's id; pick another name (--adapter name=dir)`);
  const { model, tokenizer } = await openModel(argv.model, argv, log);
  await loadAdapters(model, specs, log);
  const server = createOpenAiServer({ model, tokenizer, baseName, adapters: specs.map((s) => s.name), defaultMaxTokens: argv.maxTokens, maxQueue: argv.maxQueue, maxBodyBytes: argv.maxBodyBytes, log });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new LorafitError('E_LISTEN', `cannot listen on ${argv.host}:${argv.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`)),
    );
    server.listen(argv.port, argv.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : argv.port;
  const host = argv.host.includes(':') ? `[${argv.host}]` : argv.host;
  process.stdout.write(`listening on http://${host}:${port}/v1 (models: ${[baseName, ...specs.map((s) => s.name)].join(', ')})\n`);
  log.info({ host: argv.host, port, baseName, adapters: specs.map((s) => s.name) }, 'listening');
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.stdout.write('shutting down\n');
      server.close(() => resolve());
      server.closeAllConnections?.();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await model.dispose();
}
