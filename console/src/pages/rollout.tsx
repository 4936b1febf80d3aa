// One rollout: its counts and every device's state, moving live from `rollout:{id}`
// (rollout events and each device's row as it changes).
import { useEffect, useState } from "preact/hooks";
import { useHub } from "../context";
import { Card, Failure } from "../components";
import { nowSubscribed } from "../live";
import { progressText, withCounts, type Rollout } from "./rollouts";

interface RolloutDevice {
  device_id: string;
  status: string;
  attempts: number;
  updated_at: string;
  previous_version?: string;
  reason?: string;
  rollback?: string;
}

export function RolloutPage({ id }: { id: string }) {
  const { api, live } = useHub();
  const [rollout, setRollout] = useState<Rollout | null>(null);
  const [devices, setDevices] = useState<RolloutDevice[]>([]);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let stopped = false;
    const load = () =>
      api.get<Rollout & { devices: RolloutDevice[] }>(`/v1/ota/rollouts/${encodeURIComponent(id)}`).then((a) => {
        if (stopped) return;
        setRollout(a.body);
        setDevices(a.body.devices);
      }, setError);
    void load();
    live.want([`rollout:${id}`]);
    const stop = live.listen((frame) => {
      if (nowSubscribed(frame, `rollout:${id}`)) void load();
      else if (frame.type === "rollout") {
        setRollout((r) => (r ? withCounts(r, frame.data) : r));
        void load();
      } else if (frame.type === "rollout_device") {
        const row = frame.rollout_device as RolloutDevice & { rollout_id: string };
        if (row.rollout_id !== id) return;
        setDevices((shown) =>
          shown.some((d) => d.device_id === row.device_id)
            ? shown.map((d) => (d.device_id === row.device_id ? { ...d, ...row } : d))
            : [...shown, row],
        );
      }
    });
    return () => {
      stopped = true;
      stop();
    };
  }, [id]);

  return (
    <>
      <h1>Rollout {id}</h1>
      <Failure error={error} />
      {rollout && (
        <Card title="Rollout">
          <dl class="fields">
            <dt>Version</dt>
            <dd>{rollout.firmware_version}</dd>
            <dt>Target</dt>
            <dd>{rollout.target}</dd>
            <dt>Status</dt>
            <dd class="rollout-status">{rollout.status}</dd>
            <dt>Progress</dt>
            <dd class="progress" data-succeeded={rollout.counts.succeeded ?? 0}>
              {progressText(rollout)} ({Math.round(rollout.progress_percent)}% finished)
            </dd>
            <dt>Canary</dt>
            <dd>{rollout.canary_size} devices</dd>
            <dt>Started by</dt>
            <dd>{rollout.created_by ?? "—"}</dd>
            {rollout.reason && (
              <>
                <dt>Reason</dt>
                <dd>{rollout.reason}</dd>
              </>
            )}
          </dl>
        </Card>
      )}
      <table class="devices">
        <caption>Devices</caption>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">State</th>
            <th scope="col">Attempts</th>
            <th scope="col">From version</th>
            <th scope="col">Updated</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => (
            <tr key={d.device_id} data-device={d.device_id} data-state={d.status}>
              <th scope="row">{d.device_id}</th>
              <td>{d.status}</td>
              <td>{d.attempts}</td>
              <td>{d.previous_version ?? "—"}</td>
              <td>{d.updated_at}</td>
              <td>{d.reason ?? (d.rollback ? `rollback ${d.rollback}` : "—")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
