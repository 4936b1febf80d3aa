// Alert rules: thresholds for one device or every device of a type. Operators add and
// delete them; the API turns the condition into the metric's canonical unit.
import { useEffect, useState } from "preact/hooks";
import { useHub } from "../context";
import { may } from "../auth";
import { Card, Failure } from "../components";

interface Rule {
  rule_id: string;
  device_id?: string;
  device_type?: string;
  rule: string;
  severity: string;
}

export function RulesPanel() {
  const { api, session } = useHub();
  const [rules, setRules] = useState<Rule[]>([]);
  const [error, setError] = useState<unknown>(null);
  const operator = may(session, "operator");

  const load = () => api.get<{ rules: Rule[] }>("/v1/rules").then((a) => setRules(a.body.rules), setError);
  useEffect(() => void load(), []);

  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const fields = new FormData(form);
    const scope = String(fields.get("scope"));
    const target = String(fields.get("target") ?? "").trim();
    api
      .call("POST", "/v1/alerts", {
        [scope === "type" ? "device_type" : "device_id"]: target,
        rule: String(fields.get("rule") ?? "").trim(),
        severity: String(fields.get("severity")),
      })
      .then(() => {
        form.reset();
        setError(null);
        return load();
      }, setError);
  };
  const remove = (id: string) => () =>
    api.call("DELETE", `/v1/rules/${encodeURIComponent(id)}`).then(load, setError);

  return (
    <Card title="Alert rules">
      {operator && (
        <form class="filters" onSubmit={submit}>
          <label>
            For
            <select name="scope">
              <option value="type">every device of type</option>
              <option value="device">one device</option>
            </select>
          </label>
          <label>
            Type or device
            <input name="target" required />
          </label>
          <label>
            Condition
            <input name="rule" required placeholder="temperature > 80" />
          </label>
          <label>
            Severity
            <select name="severity">
              <option>warning</option>
              <option>critical</option>
              <option>info</option>
            </select>
          </label>
          <button type="submit">Add rule</button>
        </form>
      )}
      <Failure error={error} />
      <table class="devices rules">
        <caption>Rules</caption>
        <thead>
          <tr>
            <th scope="col">Condition</th>
            <th scope="col">For</th>
            <th scope="col">Severity</th>
            {operator && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {rules.map((r) => (
            <tr key={r.rule_id} data-rule={r.rule_id}>
              <th scope="row">{r.rule}</th>
              <td>{r.device_id ? `device ${r.device_id}` : `type ${r.device_type}`}</td>
              <td>{r.severity}</td>
              {operator && (
                <td>
                  <button type="button" onClick={remove(r.rule_id)}>Delete</button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </Card>
  );
}
