// No import circles: lib/'s runtime imports (type-only imports are erased by tsc and do not count)
// and native/ + bindings/'s local #includes form graphs without cycles. Also: CausalLM knows
// nothing of training state, and native/ never sees Node.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function files(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p, ext));
    else if (ext.test(e)) out.push(p);
  }
  return out;
}

/** Every cycle's members (strongly connected components with more than one node, or a self-loop), Tarjan's algorithm. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.map((f) => relative(ROOT, f)).sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** Runtime imports of a TypeScript file: `import ... from`, `export ... from`, `import('...')`, minus `import type` / `export type`. */
function runtimeImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:^|\n)\s*(import|export)\s+(type\s+)?[^'";]*?\bfrom\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (const m of src.matchAll(re)) {
    if (m[2]) continue;  // type-only
    const spec = m[3] ?? m[4];
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

describe('import structure', () => {
  it('lib/ has no import circles (runtime imports)', () => {
    const all = files(join(ROOT, 'lib'), /\.ts$/);
    const graph = new Map(all.map((f) => [f, runtimeImports(f)]));
    // the parser sees the imports it should: model.ts reaches the addon loader and its channel
    expect(graph.get(join(ROOT, 'lib/model/model.ts'))).toContain(join(ROOT, 'lib/model/channel.ts'));
    expect(all.length).toBeGreaterThan(100);
    expect(cycles(graph)).toEqual([]);
  });

  it('native/ and bindings/ have no #include circles', () => {
    const all = [...files(join(ROOT, 'native'), /\.(h|cc)$/), ...files(join(ROOT, 'bindings'), /\.(h|cc)$/)];
    const byName = new Map<string, string>();
    for (const f of all) byName.set(relative(join(ROOT, f.includes('/bindings/') ? 'bindings' : 'native'), f), f);
    const graph = new Map<string, string[]>();
    for (const f of all) {
      const deps: string[] = [];
      for (const m of readFileSync(f, 'utf8').matchAll(/#include "([^"]+)"/g)) {
        const target = byName.get(m[1]);
        if (target && target !== f.replace(/\.cc$/, '.h')) deps.push(target);
      }
      graph.set(f, deps);
    }
    expect(graph.get(join(ROOT, 'native/train_state.h'))).toContain(join(ROOT, 'native/causal_lm.h'));
    expect(cycles(graph)).toEqual([]);
  });

  it('CausalLM holds no training state; native/ never includes napi.h', () => {
    const causal = readFileSync(join(ROOT, 'native/causal_lm.h'), 'utf8');
    expect(causal).not.toMatch(/#include "(optimizer|train_state|train_step)\.h"/);
    expect(causal).not.toMatch(/OptimizerState/);
    for (const f of files(join(ROOT, 'native'), /\.(h|cc)$/)) expect(readFileSync(f, 'utf8'), relative(ROOT, f)).not.toMatch(/#include <napi\.h>/);
  });

  it('bindings has one ObjectWrap class per native concept', () => {
    const wraps = new Set<string>();
    for (const f of files(join(ROOT, 'bindings'), /\.h$/)) for (const m of readFileSync(f, 'utf8').matchAll(/class (\w+) : public Napi::ObjectWrap<\1>/g)) wraps.add(m[1]);
    expect([...wraps].sort()).toEqual(['AdapterWrap', 'GenerationWrap', 'ModelWrap', 'ProcessGroupWrap', 'TrainStateWrap']);
  });
});
