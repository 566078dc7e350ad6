// The `lorafit` command line: one module per command in this folder; main.ts is the executable.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yargs from 'yargs';
import { packageRoot } from '../model/native.js';
import * as chat from './chat.js';
import { reportError } from './common.js';
import * as evaluate from './eval.js';
import * as exportCmd from './export.js';
import * as generate from './generate.js';
import * as info from './info.js';
import * as merge from './merge.js';
import * as prepare from './prepare.js';
import * as serve from './serve.js';
import * as train from './train.js';
import * as ui from './ui.js';

export async function main(args: string[]): Promise<number> {
  const verbose = args.includes('--verbose');
  let usageError: string | undefined;
  const cli = yargs(args)
    .scriptName('lorafit')
    .usage('$0 <command> [options]\n\nFine-tune LLMs with LoRA from Node.js.')
    .command(train)
    .command(prepare)
    .command(chat)
    .command(generate)
    .command(evaluate)
    .command(merge)
    .command(exportCmd)
    .command(info)
    .command(serve)
    .command(ui)
    .demandCommand(1, 'give a command (lorafit --help lists them)')
    .strict()
    .recommendCommands()
    .parserConfiguration({ 'camel-case-expansion': true })
    .help()
    .alias('h', 'help')
    // lorafit's own version: yargs' default reads the package.json nearest the working directory (the app's)
    .version((JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version)
    .wrap(null)
    .fail((msg, err) => {
      if (err) throw err;
      usageError = msg;
    })
    .exitProcess(false);
  try {
    await cli.parseAsync();
  } catch (e) {
    return reportError(e, verbose);
  }
  if (usageError !== undefined) {
    process.stderr.write(`error [E_USAGE]: ${usageError}\n(lorafit --help shows the commands, lorafit <command> --help their options)\n`);
    return 1;
  }
  return 0;
}
