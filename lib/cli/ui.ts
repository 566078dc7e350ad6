// `lorafit ui [--run DIR ...] [--runs DIR] [--port 7860] [--host 127.0.0.1] [--model M]`: the local
// web dashboard (lib/ui): runs, live curves, checkpoints, and a base-vs-tuned playground with blind
// A/B votes. Binds 127.0.0.1 by default; any other host gets a token, printed once in the URL and
// checked on every request. `--port 0` picks a free port; the address is printed as
// `dashboard: http://HOST:PORT/`.
import type { Argv } from 'yargs';
import { LorafitError } from '../errors.js';
import { startUi, type RunningUi } from '../ui/start.js';
import { cliLogger, globalOptions, loadOptions, modelOptions, type GlobalArgs, type ModelArgs } from './common.js';

export const command = 'ui';
export const describe = 'Web dashboard: runs, live loss curves, a base-vs-tuned playground and blind A/B votes';

export function builder(y: Argv) {
  return modelOptions(globalOptions(y))
    .option('port', { type: 'number', default: 7860, describe: 'Port (0: any free port)' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on; a non-loopback one (0.0.0.0) requires the printed token' })
    .option('token', { type: 'string', describe: 'The token (default: a random one when the host is not loopback)' })
    .option('run', { type: 'string', array: true, describe: 'A run folder (a training --output-dir); repeat for more' })
    .option('runs', { type: 'string', describe: 'A folder whose subfolders are runs' })
    .option('model', { type: 'string', describe: "The playground's base model (default: each run's own, from lorafit-run.json or its adapter)" })
    .option('playground', { type: 'boolean', default: true, describe: 'Offer the chat playground (--no-playground: never load a model)' });
}

interface UiArgs extends GlobalArgs, ModelArgs {
  run?: string[];
  runs?: string;
  model?: string;
  port: number;
  host: string;
  token?: string;
  playground: boolean;
}

export async function handler(argv: UiArgs): Promise<void> {
  const log = cliLogger(argv, 'ui');
  const runs = argv.run ?? [];
  if (runs.length === 0 && !argv.runs) throw new LorafitError('E_OPTION', 'give --run DIR (a training output folder) or --runs DIR (a folder of runs)');
  const ui = await startUi({
    sources: { runs, runsDir: argv.runs },
    host: argv.host,
    port: argv.port,
    token: argv.token,
    playground: argv.playground ? { model: argv.model, loadOptions: loadOptions(argv) } : false,
    log,
  });
  printUrl(ui);
  await untilSignal();
  process.stdout.write('shutting down\n');
  await ui.stop();
}

export function printUrl(ui: RunningUi, out: NodeJS.WritableStream = process.stdout): void {
  out.write(`dashboard: ${ui.url}\n`);
  if (ui.token) out.write('(the token in this URL is needed on every request; it is printed only here)\n');
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
