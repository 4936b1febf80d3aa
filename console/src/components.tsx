// The small pieces every page shares.
import type { ComponentChildren } from "preact";

/** The mark on every view that shows a simulated device's data. */
export function SimulationWatermark({ shown }: { shown: boolean }) {
  if (!shown) return null;
  return (
    <div class="watermark" role="status" data-testid="simulation-watermark">
      Simulated data: some devices shown here are simulated
    </div>
  );
}

export function Status({ value }: { value: string | undefined }) {
  const known = value ?? "unknown";
  return <span class={`status status-${known}`}>{known}</span>;
}

export function Failure({ error }: { error: unknown }) {
  if (!error) return null;
  return <p role="alert" class="failure">{String(error instanceof Error ? error.message : error)}</p>;
}

export function Card({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="card" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}
