// The main job (README: `npm run demo`): exactly `lorafit train` with no --model and no --dataset.
// It LoRA-tunes the default model, SmolLM2-135M-Instruct (or, where it could not be fetched, the
// embedded models/lorafit-tiny), to answer in Yoda's style, and prints the held-out NLL before and
// after and the base and tuned answers to three questions it never trained on
// (lib/train/default-job.ts). Flags pass through: `npm run demo -- --max-steps 10`.
import { main } from '../lib/cli/app.js';

process.exitCode = await main(['train', '--output-dir', 'lorafit-demo', ...process.argv.slice(2)]);
