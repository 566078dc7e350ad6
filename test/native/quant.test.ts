// Runs the C++ NF4/int8 test program (test/native/quant_test.cc) against the bitsandbytes-exact
// fixture: codes, packed bytes, absmax, double quantization, dequantized values.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('native quant_test passes every check against the NF4 fixture', async () => {
  const script = fileURLToPath(new URL('./build.sh', import.meta.url));
  const { stdout } = await run('bash', [script, 'run'], { maxBuffer: 16 << 20 });
  expect(stdout).toMatch(/PASS/);
  expect(stdout).not.toMatch(/FAIL/);
}, 300_000);
