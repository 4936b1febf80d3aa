// A live time series: uPlot over [seconds, values] columns, redrawn as points arrive.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  /** Unix seconds, ascending. */
  times: number[];
  values: number[];
  /** When the newest pushed point arrived (ms), and its measurement time. */
  updatedAt?: number;
  lastTs?: string;
}

export function Chart({ title, series, width = 640 }: { title: string; series: Series; width?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    plot.current = new uPlot(
      {
        title,
        width,
        height: 220,
        series: [{}, { label: title, stroke: "#1f5fa8", width: 1.5 }],
        axes: [{}, {}],
      },
      [series.times, series.values],
      host.current!,
    );
    return () => plot.current?.destroy();
  }, [title]);

  useEffect(() => {
    plot.current?.setData([series.times, series.values]);
  }, [series]);

  // The data attributes say how much is drawn and how fresh it is (the browser tests'
  // latency figure comes from them).
  return (
    <div
      ref={host}
      class="chart"
      role="img"
      aria-label={`${title} over time`}
      data-metric={title}
      data-points={series.times.length}
      data-updated-at={series.updatedAt}
      data-last-ts={series.lastTs}
    />
  );
}
