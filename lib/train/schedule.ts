// Learning-rate schedules as transformers' get_scheduler builds them: the rate used by optimizer
// step s (0-based) is base * lambda(s), with linear warm-up from 0.
export type LrScheduler = 'constant' | 'linear' | 'cosine';

export function learningRateAt(step: number, o: { base: number; scheduler: LrScheduler; warmupSteps: number; totalSteps: number }): number {
  const { base, scheduler, warmupSteps, totalSteps } = o;
  if (step < warmupSteps) return (base * step) / Math.max(1, warmupSteps);
  if (scheduler === 'constant') return base;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (scheduler === 'linear') return base * Math.max(0, 1 - progress);
  return base * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
