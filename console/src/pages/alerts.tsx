// Alerts by state, live from the `alerts` channel; operators acknowledge and resolve.
import { useEffect, useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { useHub } from "../context";
import { may } from "../auth";
import { Failure, SimulationWatermark } from "../components";
import { latestOnly } from "../paging";
import { RulesPanel } from "./rules";
import { nowSubscribed } from "../live";

export interface Alert {
  alert_id: string;
  device_id: string;
  rule_id: string;
  metric: string;
  severity: string;
  state: "open" | "acknowledged" | "resolved";
  count: number;
  summary: string;
  raised_at?: string | null;
  acknowledged_by?: string;
  simulated?: boolean;
}

const STATES = ["open", "acknowledged", "resolved"] as const;

export function Alerts() {
  const { api, live, session } = useHub();
  const [state, setState] = useState<(typeof STATES)[number]>("open");
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [simulated, setSimulated] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const operator = may(session, "operator");
  // Bumped when the socket (re)subscribes: what passed before it is read again.
  const [subscriptions, setSubscriptions] = useState(0);

  useEffect(() => {
    return latestOnly(
      api.get<{ alerts: Alert[] }>(`/v1/alerts?state=${state}&limit=100`),
      (answer) => {
        setAlerts(answer.body.alerts);
        setSimulated(answer.simulated || answer.body.alerts.some((a) => a.simulated));
      },
      setError,
    );
  }, [state, subscriptions]);

  useEffect(() => {
    live.want(["alerts"]);
    return live.listen((frame) => {
      if (nowSubscribed(frame, "alerts")) setSubscriptions((n) => n + 1);
      if (frame.type !== "alert") return;
      const alert = frame.alert as Alert;
      if (frame.simulated) setSimulated(true);
      setAlerts((shown) => {
        const rest = shown.filter((a) => a.alert_id !== alert.alert_id);
        // An alert that left this state leaves the list; one that entered it joins at the top.
        return alert.state === state && frame.change !== "removed" ? [alert, ...rest] : rest;
      });
    });
  }, [state]);

  const act = (alert: Alert, action: "ack" | "resolve") => () =>
    api.call("POST", `/v1/alerts/${encodeURIComponent(alert.alert_id)}/${action}`, {}).then(() => setError(null), setError);

  return (
    <>
      <h1>Alerts</h1>
      <SimulationWatermark shown={simulated} />
      <Failure error={error} />
      <div role="tablist" aria-label="Alert state" class="tabs">
        {STATES.map((s) => (
          <button key={s} type="button" role="tab" aria-selected={s === state} onClick={() => setState(s)}>
            {s}
          </button>
        ))}
      </div>
      <table class="devices alerts">
        <caption>{state} alerts</caption>
        <thead>
          <tr>
            <th scope="col">Alert</th>
            <th scope="col">Device</th>
            <th scope="col">Severity</th>
            <th scope="col">Raised</th>
            <th scope="col">State</th>
            {operator && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {alerts.map((a) => (
            <tr key={a.alert_id} data-alert={a.alert_id} data-device={a.device_id}>
              <th scope="row">{a.summary}</th>
              <td>
                <Link href={`/devices/${encodeURIComponent(a.device_id)}`}>{a.device_id}</Link>
                {a.simulated && <span class="badge">simulated</span>}
              </td>
              <td>{a.severity}</td>
              <td>{a.raised_at ?? "—"}</td>
              <td class="state">
                {a.state}
                {a.acknowledged_by ? ` by ${a.acknowledged_by}` : ""}
              </td>
              {operator && (
                <td>
                  {a.state === "open" && (
                    <button type="button" onClick={act(a, "ack")}>
                      Acknowledge
                    </button>
                  )}
                  {a.state !== "resolved" && (
                    <button type="button" onClick={act(a, "resolve")}>
                      Resolve
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <RulesPanel />
    </>
  );
}
