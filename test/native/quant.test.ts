// Runs the C++ NF4/int8 test program (test/native/quant_test.cc) against the fixture
// test/fixtures/hf/nf4 and against the real bitsandbytes of the interop venv: bnb_nf4_check.py
// quantizes, dequantizes and multiplies with bitsandbytes (CPU backend) and writes everything to a
// file that quant_test compares with lorafit's kernels. Without LORAFIT_PYTHON (or without
// bitsandbytes in it) this fails; it never skips.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { runPython, scratchDir } from '../helpers/python.js';

const run = promisify(execFile);
const dir = scratchDir('bnb-nf4');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// What quant_test must report as equal to bitsandbytes, value for value, in both cases (fp32
// weight with zero blocks and a partial last block; bf16 weight with odd numel).
const EXACT = [
  'packed',
  'absmax (plain)',
  'absmax2',
  'dequantized plain f32',
  'dequantized double-quant f32 (bnb state)',
  'dequantized double-quant bf16 (bnb state)',
  'matmul_4bit no-grad == quantized_linear (bnb state)',
  'matmul_4bit == quantized_linear with autograd (bnb state)',
  'matmul_4bit grad_x == quantized_linear backward (bnb state)',
];

it('native quant_test: the NF4 fixture and the real bitsandbytes (quantize, dequantize, double quant, matmul_4bit)', async () => {
  const bnbFile = join(dir, 'bnb_nf4.safetensors');
  // runPython runs on one thread (OMP_NUM_THREADS=1); so does quant_test below, and on MKL as
  // torch does (LORAFIT_ONEDNN_FP32=0: lorafit's fp32 GEMMs run on oneDNN by default,
  // native/cpu_matmul.h), so the fp32 GEMMs sum in the same order and must match bit for bit.
  const py = await runPython('bnb_nf4_check.py', ['--out', bnbFile]);
  expect(py).toMatch(/^bitsandbytes \d+\.\d+/m);
  const script = fileURLToPath(new URL('./build.sh', import.meta.url));
  const { stdout } = await run('bash', [script, 'run'], {
    maxBuffer: 16 << 20,
    env: { ...process.env, BNB_FILE: bnbFile, OMP_NUM_THREADS: '1', LORAFIT_ONEDNN_FP32: '0' },
  });
  expect(stdout).not.toMatch(/FAIL/);
  expect(stdout).toMatch(/ALL PASSED: 0 failure\(s\)/);
  for (const c of ['case0', 'case1']) {
    for (const name of EXACT) expect(stdout, `${name} [bnb ${c}]`).toContain(`PASS ${name} [bnb ${c}]: `);
    expect(stdout).toMatch(new RegExp(`PASS absmax_q with bnb's nested map \\[bnb ${c}\\]`));
    expect(stdout).toMatch(new RegExp(`PASS own double quant -> dequantized within 2e-3 x max\\|w\\| of bitsandbytes' \\[bnb ${c}\\]`));
  }
  expect(stdout).toContain('PASS dequantize from serialized state');
}, 300_000);
