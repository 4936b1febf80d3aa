// Firmware rollouts with their progress per device state, moving live from the
// `rollouts` channel; admins cancel one in progress.
import { useEffect, useState } from "preact/hooks";
import { useHub } from "../context";
import { may } from "../auth";
import { Failure } from "../components";

interface Rollout {
  rollout_id: string;
  firmware_version: string;
  target: string;
  status: string;
  device_count: number;
  counts: Record<string, number>;
  progress_percent: number;
  created_at: string;
}

interface Firmware {
  version: string;
  device_type?: string;
  status: string;
}

export function Rollouts() {
  const { api, live, session } = useHub();
  const [rollouts, setRollouts] = useState<Rollout[]>([]);
  const [firmware, setFirmware] = useState<Firmware[]>([]);
  const [error, setError] = useState<unknown>(null);

  const load = () =>
    api.get<{ rollouts: Rollout[] }>("/v1/ota/rollouts").then((a) => setRollouts(a.body.rollouts), setError);

  useEffect(() => {
    void load();
    api
      .get<{ firmware: Firmware[] }>("/v1/firmware")
      .then((a) => setFirmware(a.body.firmware), setError);
    live.want(["rollouts"]);
    return live.listen((frame) => {
      if (frame.type !== "rollout") return;
      const data = frame.data as { rollout_id: string; counts?: Record<string, number> };
      // The event's counts at once; the API's full answer after.
      setRollouts((shown) =>
        shown.map((r) =>
          r.rollout_id === data.rollout_id && data.counts ? { ...r, counts: { ...r.counts, ...data.counts } } : r,
        ),
      );
      void load();
    });
  }, []);

  const cancel = (id: string) => () =>
    api.call("POST", `/v1/ota/rollouts/${encodeURIComponent(id)}/cancel`, {}).then(load, setError);

  return (
    <>
      <h1>Firmware and rollouts</h1>
      <Failure error={error} />
      <table class="devices">
        <caption>Rollouts</caption>
        <thead>
          <tr>
            <th scope="col">Rollout</th>
            <th scope="col">Version</th>
            <th scope="col">Target</th>
            <th scope="col">Status</th>
            <th scope="col">Progress</th>
            {may(session, "admin") && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {rollouts.map((r) => (
            <tr key={r.rollout_id} data-rollout={r.rollout_id}>
              <th scope="row">{r.rollout_id}</th>
              <td>{r.firmware_version}</td>
              <td>{r.target}</td>
              <td>{r.status}</td>
              <td class="progress" data-succeeded={r.counts.succeeded ?? 0}>
                {Object.entries(r.counts)
                  .filter(([, n]) => n > 0)
                  .map(([state, n]) => `${state} ${n}`)
                  .join(", ") || "—"}{" "}
                of {r.device_count}
              </td>
              {may(session, "admin") && (
                <td>
                  {r.status === "in_progress" && (
                    <button type="button" onClick={cancel(r.rollout_id)}>
                      Cancel
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <table class="devices">
        <caption>Firmware</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Device type</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {firmware.map((f) => (
            <tr key={f.version}>
              <th scope="row">{f.version}</th>
              <td>{f.device_type ?? "—"}</td>
              <td>{f.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
