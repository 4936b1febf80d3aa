// One device: its registry row, a live chart per metric (history from the query API,
// then pushed readings), its shadow and commands.
import { useEffect, useState } from "preact/hooks";
import { useHub } from "../context";
import { may } from "../auth";
import type { Device, Reading } from "../api";
import { Card, Failure, SimulationWatermark, Status } from "../components";
import { Chart, type Series } from "../chart";
import { CommandsPanel, CredentialsPanel, ShadowPanel } from "./device-panels";

interface QueryResult {
  points: { ts: string; value?: number; avg?: number }[];
}

const HISTORY_SECONDS = 3600;

export function DevicePage({ id }: { id: string }) {
  const { api, live, session } = useHub();
  const [device, setDevice] = useState<Device | null>(null);
  const [series, setSeries] = useState<Record<string, Series>>({});
  const [simulated, setSimulated] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let stopped = false;
    (async () => {
      const answer = await api.get<Device>(`/v1/devices/${encodeURIComponent(id)}`);
      if (stopped) return;
      setDevice(answer.body);
      setSimulated(answer.simulated || answer.body.simulated);
      const latest = await api
        .get<Reading>(`/v1/devices/${encodeURIComponent(id)}/latest`)
        .then((a) => a.body)
        .catch(() => null);
      const metrics = Object.keys(latest?.metrics ?? {});
      const end = new Date();
      const start = new Date(end.getTime() - HISTORY_SECONDS * 1000);
      const histories: Record<string, Series> = {};
      for (const metric of metrics) {
        const query = new URLSearchParams({
          device_id: id,
          metric,
          start: start.toISOString(),
          end: end.toISOString(),
          max_points: "500",
        });
        const result = await api.get<QueryResult>(`/v1/query?${query}`);
        if (result.simulated) setSimulated(true);
        const points = result.body.points.filter((p) => (p.value ?? p.avg) !== undefined);
        histories[metric] = {
          times: points.map((p) => Date.parse(p.ts) / 1000),
          values: points.map((p) => (p.value ?? p.avg)!),
        };
      }
      if (!stopped) setSeries((pushed) => ({ ...histories, ...mergeAll(histories, pushed) }));
    })().catch(setError);
    live.want([`device:${id}`]);
    const stop = live.listen((frame) => {
      if (frame.type === "reading" && frame.device_id === id) {
        const at = Date.parse(frame.ts as string) / 1000;
        const metrics = frame.metrics as Record<string, number>;
        if (frame.simulated) setSimulated(true);
        setSeries((current) => {
          const next = { ...current };
          const arrived = Date.now();
          for (const [metric, value] of Object.entries(metrics)) {
            next[metric] = {
              ...append(next[metric] ?? { times: [], values: [] }, at, value),
              updatedAt: arrived,
              lastTs: frame.ts as string,
            };
          }
          return next;
        });
      } else if (frame.type === "device") {
        const changed = frame.device as Partial<Device> & { device_id: string };
        if (changed.device_id === id) setDevice((d) => (d ? { ...d, ...changed } : d));
      }
    });
    return () => {
      stopped = true;
      stop();
    };
  }, [id]);

  const toggleQuarantine = () => {
    if (!device) return;
    const method = device.quarantined ? "DELETE" : "PUT";
    api
      .call<Device>(method, `/v1/devices/${encodeURIComponent(id)}/quarantine`)
      .then(() => setDevice({ ...device, quarantined: !device.quarantined }), setError);
  };

  return (
    <>
      <h1>{id}</h1>
      <SimulationWatermark shown={simulated} />
      <Failure error={error} />
      {device && (
        <Card title="Registry">
          <dl class="fields">
            <dt>Type</dt>
            <dd>{device.device_type}</dd>
            <dt>Group</dt>
            <dd>{device.group ?? "—"}</dd>
            <dt>Connectivity</dt>
            <dd>
              <Status value={device.connectivity} />
            </dd>
            <dt>Firmware</dt>
            <dd>{device.firmware_version ?? "—"}</dd>
            <dt>Quarantine</dt>
            <dd>{device.quarantined ? "quarantined" : "—"}</dd>
          </dl>
          {may(session, "operator") && (
            <button type="button" onClick={toggleQuarantine}>
              {device.quarantined ? "Release from quarantine" : "Quarantine"}
            </button>
          )}
        </Card>
      )}
      <Card title="Telemetry">
        {Object.keys(series).length === 0 && <p>No readings yet.</p>}
        {Object.entries(series).map(([metric, s]) => (
          <Chart key={metric} title={metric} series={s} />
        ))}
      </Card>
      <ShadowPanel id={id} />
      <CommandsPanel id={id} />
      {may(session, "admin") && <CredentialsPanel id={id} />}
    </>
  );
}

/** A pushed point in time order; a point at a time already held replaces it. */
function append(series: Series, at: number, value: number): Series {
  const times = [...series.times];
  const values = [...series.values];
  let i = times.length;
  while (i > 0 && times[i - 1] > at) i--;
  if (i > 0 && times[i - 1] === at) values[i - 1] = value;
  else {
    times.splice(i, 0, at);
    values.splice(i, 0, value);
  }
  return { times, values };
}

/** Points pushed while the history loaded, merged into it. */
function mergeAll(history: Record<string, Series>, pushed: Record<string, Series>): Record<string, Series> {
  const merged: Record<string, Series> = {};
  for (const [metric, points] of Object.entries(pushed)) {
    let series = history[metric] ?? { times: [], values: [] };
    points.times.forEach((t, i) => (series = append(series, t, points.values[i])));
    merged[metric] = series;
  }
  return merged;
}
