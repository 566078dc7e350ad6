// `lorafit export ollama|gguf` on the tiny fixtures, as a user runs it: the files written, the
// Modelfile for an HF-folder base (FROM the base exported next to it), the printed `ollama create`
// line, and bad input naming the file at fault. test/export/smollm2-llama-cpp.test.ts runs the same
// commands on the real SmolLM2 GGUF and proves their output in llama.cpp.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../lib/gguf/reader.js';
import { defaultOllamaName } from '../../lib/cli/export.js';
import { LLAMA_ADAPTER, byteLevelLlama, ensureBuilt, runCli, tempDir } from './helpers.js';

let model: string;
const dir = tempDir('lorafit-export-');
beforeAll(() => {
  ensureBuilt();
  model = byteLevelLlama();
  // a ChatML template so the Modelfile gets a TEMPLATE
  const cfgFile = join(model, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
  cfg.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  writeFileSync(cfgFile, JSON.stringify(cfg));
});

describe('lorafit export ollama', () => {
  it('HF-folder base: adapter.gguf, the base as model.gguf, a Modelfile FROM ./model.gguf with the ChatML template, and the ollama create line', async () => {
    const out = join(dir, 'ollama');
    const r = await runCli(['export', 'ollama', '--model', model, '--adapter', LLAMA_ADAPTER, '--out', out, '--dtype', 'F32']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const text = readFileSync(join(out, 'Modelfile'), 'utf8');
    expect(text.split('\n').slice(0, 2)).toEqual(['FROM ./model.gguf', 'ADAPTER ./adapter.gguf']);
    expect(text).toContain('PARAMETER stop "<|im_end|>"');
    expect(r.stdout).toContain(`ollama create llama -f ${join(out, 'Modelfile')}`); // the adapter folder llama/adapter is named after its parent
    const lora = await readGguf(join(out, 'adapter.gguf'));
    expect(lora.metadata.get('general.type')).toBe('adapter');
    expect(lora.tensors.length).toBe(28);
    const base = await readGguf(join(out, 'model.gguf'));
    expect(base.metadata.get('general.type')).toBe('model');
    expect(base.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.typeName).toBe('F32');
  });

  it('bad input names the file: a missing adapter, an adapter of another model, no --adapter', async () => {
    const missing = await runCli(['export', 'ollama', '--model', model, '--adapter', join(dir, 'nope'), '--out', join(dir, 'x')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error [E_EXPORT]: ${join(dir, 'nope')}: no such adapter folder\n`);

    const notAdapter = await runCli(['export', 'ollama', '--model', model, '--adapter', model, '--out', join(dir, 'x')]);
    expect(notAdapter.stderr).toContain(`error [E_EXPORT]: ${join(model, 'adapter_config.json')}: not found`);

    // the llama fixture's adapter (r=4, hidden 64) against a base with other shapes
    const other = join(dir, 'other');
    const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
    cpSync(model, other, { recursive: true });
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 96 }));
    const wrong = await runCli(['export', 'ollama', '--model', other, '--adapter', LLAMA_ADAPTER, '--out', join(dir, 'x')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^error \[E_EXPORT\]: .*adapter_model\.safetensors: '.*mlp\.down_proj\.lora_A\.weight' \[4, 128\] and .* do not fit the base model .*other, whose model\.layers\.0\.mlp\.down_proj weight is \[64, 96\].*another model\?\n$/);

    const noAdapter = await runCli(['export', 'ollama', '--model', model, '--out', join(dir, 'x')]);
    expect(noAdapter.stderr).toContain('error [E_OPTION]: --adapter is required for `export ollama`');
  });

  it('an ollama:NAME[:TAG] base: FROM the Ollama model itself (its template and parameters kept), adapter checked against its blob', async () => {
    // a models folder laid out as Ollama lays it: the llama fixture as the GGUF blob of tiny:1b
    const models = join(dir, 'ollama-models');
    const gguf = join(dir, 'tiny.gguf');
    expect((await runCli(['export', 'gguf', '--model', model, '--out', gguf, '--dtype', 'F32'])).code).toBe(0);
    const bytes = readFileSync(gguf);
    const hex = createHash('sha256').update(bytes).digest('hex');
    mkdirSync(join(models, 'blobs'), { recursive: true });
    writeFileSync(join(models, 'blobs', `sha256-${hex}`), bytes);
    mkdirSync(join(models, 'manifests', 'registry.ollama.ai', 'library', 'tiny'), { recursive: true });
    const layer = { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${hex}`, size: bytes.length };
    writeFileSync(join(models, 'manifests', 'registry.ollama.ai', 'library', 'tiny', '1b'), JSON.stringify({ schemaVersion: 2, layers: [layer] }));
    const saved = process.env.OLLAMA_MODELS;
    process.env.OLLAMA_MODELS = models;
    try {
      const out = join(dir, 'from-ollama');
      const r = await runCli(['export', 'ollama', '--model', 'ollama:tiny:1b', '--adapter', LLAMA_ADAPTER, '--out', out, '--name', 'tiny-yoda']);
      expect(r.stderr).toBe('');
      expect(readFileSync(join(out, 'Modelfile'), 'utf8')).toBe('FROM tiny:1b\nADAPTER ./adapter.gguf\n');
      expect(r.stdout).toContain(`ollama create tiny-yoda -f ${join(out, 'Modelfile')}`);
      const missing = await runCli(['export', 'ollama', '--model', 'ollama:tiny:7b', '--adapter', LLAMA_ADAPTER, '--out', out]);
      expect(missing.stderr).toMatch(/^error \[E_OLLAMA\]: .*1b/);
    } finally {
      if (saved === undefined) delete process.env.OLLAMA_MODELS;
      else process.env.OLLAMA_MODELS = saved;
    }
  });

  it('the default name: the adapter folder, or its parent when it is called "adapter"; lower case, Ollama-safe', () => {
    expect(defaultOllamaName('/x/runs/My Yoda Run/adapter')).toBe('my-yoda-run');
    expect(defaultOllamaName('/x/yoda_v2')).toBe('yoda_v2');
  });
});

describe('lorafit export gguf', () => {
  it('an HF folder alone, and with the adapter merged: one model GGUF each, the merged one differing in the adapted weights only', async () => {
    const plain = join(dir, 'plain.gguf');
    const merged = join(dir, 'merged.gguf');
    expect((await runCli(['export', 'gguf', '--model', model, '--out', plain, '--dtype', 'F32'])).code).toBe(0);
    const r = await runCli(['export', 'gguf', '--model', model, '--adapter', LLAMA_ADAPTER, '--out', merged, '--dtype', 'F32']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/wrote .*merged\.gguf: llama, \d+ tensors, F32, 14 adapted modules of .* merged/);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]); // the merged HF folder it went through is gone
    const [a, b] = [await readGguf(plain), await readGguf(merged)];
    expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
    const bytes = (f: typeof a, name: string) => {
      const t = f.tensors.find((x) => x.name === name)!;
      return readFileSync(f.path).subarray(t.offset, t.offset + t.nbytes);
    };
    expect(bytes(b, 'blk.0.attn_norm.weight')).toEqual(bytes(a, 'blk.0.attn_norm.weight'));
    expect(bytes(b, 'blk.0.attn_q.weight')).not.toEqual(bytes(a, 'blk.0.attn_q.weight'));
  });
});
