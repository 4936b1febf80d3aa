// Percentiles of a sample, printed the same way by every benchmark.
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function describe(name: string, samples: number[], unit = "ms"): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(0);
  return `${name}: n=${sorted.length} p50 ${f(percentile(sorted, 50))} ${unit}, p95 ${f(percentile(sorted, 95))} ${unit}, max ${f(sorted.at(-1) ?? NaN)} ${unit}`;
}
