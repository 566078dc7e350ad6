#!/usr/bin/env node
// The `lorafit` executable (package.json "bin"); the commands are in app.ts.
import { hideBin } from 'yargs/helpers';
import { main } from './app.js';
import { reportError } from './common.js';

main(hideBin(process.argv)).then(
  (code) => process.exit(code),
  (e) => process.exit(reportError(e, process.argv.includes('--verbose'))),
);
