// Firmware rollouts with their progress per device state, moving live from the
// `rollouts` channel; admins start one from a ready firmware version and cancel one in
// progress. Firmware itself is added with `hub-admin firmware add`, where the signing
// key is: the browser never holds it.
import { useEffect, useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { useHub } from "../context";
import { may } from "../auth";
import { Card, Failure } from "../components";
import { nowSubscribed } from "../live";

export interface Rollout {
  rollout_id: string;
  firmware_version: string;
  target: string;
  status: string;
  device_count: number;
  canary_size: number;
  counts: Record<string, number>;
  progress_percent: number;
  created_at: string;
  created_by?: string;
  reason?: string;
}

interface Firmware {
  version: string;
  device_type?: string;
  status: string;
}

/** "succeeded 3, in_progress 1 of 4": the states with devices in them. */
export function progressText(r: Pick<Rollout, "counts" | "device_count">): string {
  const states = Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${state} ${n}`)
    .join(", ");
  return `${states || "—"} of ${r.device_count}`;
}

/** A rollout event's counts at once (the API's full answer follows). */
export function withCounts<T extends Rollout>(r: T, event: unknown): T {
  const data = event as { rollout_id?: string; counts?: Record<string, number> } | undefined;
  return data?.rollout_id === r.rollout_id && data.counts ? { ...r, counts: { ...r.counts, ...data.counts } } : r;
}

export function Rollouts() {
  const { api, live, session } = useHub();
  const [rollouts, setRollouts] = useState<Rollout[]>([]);
  const [firmware, setFirmware] = useState<Firmware[]>([]);
  const [error, setError] = useState<unknown>(null);
  const admin = may(session, "admin");

  const load = () =>
    api.get<{ rollouts: Rollout[] }>("/v1/ota/rollouts").then((a) => setRollouts(a.body.rollouts), setError);

  useEffect(() => {
    void load();
    api
      .get<{ firmware: Firmware[] }>("/v1/firmware")
      .then((a) => setFirmware(a.body.firmware), setError);
    live.want(["rollouts"]);
    return live.listen((frame) => {
      if (nowSubscribed(frame, "rollouts")) void load();
      if (frame.type !== "rollout") return;
      setRollouts((shown) => shown.map((r) => withCounts(r, frame.data)));
      void load();
    });
  }, []);

  const cancel = (id: string) => () =>
    api.call("POST", `/v1/ota/rollouts/${encodeURIComponent(id)}/cancel`, {}).then(load, setError);

  return (
    <>
      <h1>Firmware and rollouts</h1>
      <Failure error={error} />
      {admin && <StartRollout firmware={firmware.filter((f) => f.status === "ready")} started={load} />}
      <table class="devices">
        <caption>Rollouts</caption>
        <thead>
          <tr>
            <th scope="col">Rollout</th>
            <th scope="col">Version</th>
            <th scope="col">Target</th>
            <th scope="col">Status</th>
            <th scope="col">Progress</th>
            {admin && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {rollouts.map((r) => (
            <tr key={r.rollout_id} data-rollout={r.rollout_id}>
              <th scope="row">
                <Link href={`/rollouts/${encodeURIComponent(r.rollout_id)}`}>{r.rollout_id}</Link>
              </th>
              <td>{r.firmware_version}</td>
              <td>{r.target}</td>
              <td class="rollout-status">{r.status}</td>
              <td class="progress" data-succeeded={r.counts.succeeded ?? 0}>
                {progressText(r)}
              </td>
              {admin && (
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

/** An admin's form: a ready version to a thing group, canary first. */
function StartRollout({ firmware, started }: { firmware: Firmware[]; started: () => void }) {
  const { api } = useHub();
  const [error, setError] = useState<unknown>(null);

  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const policy: Record<string, number> = {};
    for (const name of ["canary_percent", "abort_failure_percent"]) {
      const value = String(form.get(name) ?? "").trim();
      if (value) policy[name] = Number(value);
    }
    api
      .call("POST", "/v1/ota/rollout", {
        firmware_version: form.get("firmware_version"),
        target: String(form.get("target") ?? "").trim(),
        policy,
      })
      .then(() => {
        setError(null);
        started();
      }, setError);
  };

  return (
    <Card title="Start a rollout">
      <form class="filters" onSubmit={submit}>
        <label>
          Firmware
          <select name="firmware_version" required>
            {firmware.map((f) => (
              <option key={f.version} value={f.version}>
                {f.version} ({f.device_type ?? "any type"})
              </option>
            ))}
          </select>
        </label>
        <label>
          Thing group
          <input name="target" required />
        </label>
        <label>
          Canary %
          <input name="canary_percent" type="number" min="0" max="100" step="any" placeholder="10" />
        </label>
        <label>
          Abort at failed %
          <input name="abort_failure_percent" type="number" min="0.01" max="100" step="0.01" placeholder="5" />
        </label>
        <button type="submit" disabled={firmware.length === 0}>
          Start rollout
        </button>
      </form>
      <Failure error={error} />
    </Card>
  );
}
