// The time one profiled training step spent in the linear layers' matmuls, from the libtorch
// chrome trace that LORAFIT_PROFILE_STEP=N LORAFIT_PROFILE_FILE=F writes (native/train_state.cc):
// aten::mm, aten::addmm, aten::addmm_ and lorafit::onednn_mm (native/cpu_matmul.cc) events
// (frozen projections, lm_head and LoRA, forward and backward; attention runs as bmm/baddbmm/SDPA
// or lorafit's kernel and is not among them). An event nested in
// another counted one is not added again.
import { readFileSync } from 'node:fs';

const LINEAR_OPS = new Set(['aten::mm', 'aten::addmm', 'aten::addmm_', 'lorafit::onednn_mm']);

type TraceEvent = { name: string; ph?: string; ts: number; dur: number; tid?: number | string };

export type LinearTime = { linearMs: number; linearCalls: number; traceSpanMs: number };

export function linearTime(tracePath: string): LinearTime {
  const raw = JSON.parse(readFileSync(tracePath, 'utf8')) as TraceEvent[] | { traceEvents: TraceEvent[] };
  const events = (Array.isArray(raw) ? raw : raw.traceEvents).filter((e) => e.ph === 'X' && typeof e.dur === 'number');
  if (events.length === 0) throw new Error(`${tracePath}: no complete ('X') events in the trace`);
  events.sort((a, b) => String(a.tid).localeCompare(String(b.tid)) || a.ts - b.ts || b.dur - a.dur);
  let us = 0, calls = 0, tid: unknown = undefined, countedUntil = -Infinity;
  for (const e of events) {
    if (e.tid !== tid) {
      tid = e.tid;
      countedUntil = -Infinity;
    }
    if (!LINEAR_OPS.has(e.name) || e.ts < countedUntil) continue;
    us += e.dur;
    calls += 1;
    countedUntil = e.ts + e.dur;
  }
  const start = Math.min(...events.map((e) => e.ts)), end = Math.max(...events.map((e) => e.ts + e.dur));
  return { linearMs: us / 1000, linearCalls: calls, traceSpanMs: (end - start) / 1000 };
}
