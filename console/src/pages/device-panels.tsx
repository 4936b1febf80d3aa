// The device page's panels beside its charts: the shadow (operators set desired state),
// commands with their answers (live from the device's channel), and its credentials
// (admins). Each shows the API's own refusal when there is one.
import { useEffect, useState } from "preact/hooks";
import { useHub } from "../context";
import { may } from "../auth";
import { Card, Failure } from "../components";
import { nowSubscribed } from "../live";

interface Shadow {
  version: number;
  desired: Record<string, unknown>;
  reported: Record<string, unknown>;
  delta: Record<string, unknown> | null;
}

interface Command {
  command_id: string;
  name: string;
  params: Record<string, unknown>;
  status: string;
  issued_at: string;
  issued_by: string;
  answered_at?: string;
  result?: unknown;
  error?: string;
}

interface Certificate {
  certificate_id: string;
  state: string;
  created_at: string;
  retire_at?: string;
  revoked_at?: string;
}

const path = (id: string, rest = "") => `/v1/devices/${encodeURIComponent(id)}${rest}`;

/** A JSON object typed by a person; the reason when it is not one. */
function jsonObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("give a JSON object, e.g. {\"interval\": 30}");
  return parsed as Record<string, unknown>;
}

const shown = (value: unknown) => (value === undefined ? "—" : JSON.stringify(value, null, 1));

export function ShadowPanel({ id }: { id: string }) {
  const { api, session } = useHub();
  const [shadow, setShadow] = useState<Shadow | null>(null);
  const [draft, setDraft] = useState("");
  const [error, setError] = useState<unknown>(null);

  const load = () =>
    api.get<Shadow>(path(id, "/shadow")).then((a) => {
      setShadow(a.body);
      setError(null);
    }, setError);
  useEffect(() => void load(), [id]);

  const submit = (event: Event) => {
    event.preventDefault();
    let desired: Record<string, unknown>;
    try {
      desired = jsonObject(draft);
    } catch (problem) {
      return setError(problem);
    }
    api
      .call<Shadow>("PATCH", path(id, "/shadow"), { desired, expected_version: shadow?.version ?? 0 })
      .then((a) => {
        setShadow(a.body);
        setDraft("");
        setError(null);
      }, setError);
  };

  return (
    <Card title="Shadow">
      {shadow && (
        <dl class="fields shadow" data-version={shadow.version}>
          <dt>Version</dt>
          <dd>{shadow.version}</dd>
          <dt>Desired</dt>
          <dd><pre class="desired">{shown(shadow.desired)}</pre></dd>
          <dt>Reported</dt>
          <dd><pre class="reported">{shown(shadow.reported)}</pre></dd>
          <dt>Delta</dt>
          <dd><pre class="delta">{shadow.delta ? shown(shadow.delta) : "none: the device reports what is desired"}</pre></dd>
        </dl>
      )}
      {/* Shadow changes are not pushed: the device's report is read on asking. */}
      <button type="button" onClick={() => void load()}>Refresh shadow</button>
      {may(session, "operator") && (
        <form onSubmit={submit} class="editor">
          <label>
            Desired state to set (JSON; a null value removes a key)
            <textarea name="desired" rows={3} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} required />
          </label>
          <button type="submit">Set desired</button>
        </form>
      )}
      <Failure error={error} />
    </Card>
  );
}

export function CommandsPanel({ id }: { id: string }) {
  const { api, live, session } = useHub();
  const [commands, setCommands] = useState<Command[]>([]);
  const [error, setError] = useState<unknown>(null);

  const take = (command: Command) =>
    setCommands((list) => [command, ...list.filter((c) => c.command_id !== command.command_id)]);

  useEffect(() => {
    const load = () =>
      api.get<{ commands: Command[] }>(path(id, "/commands?limit=20")).then((a) => setCommands(a.body.commands), setError);
    void load();
    // The device page subscribes to device:{id}; answers arrive on it.
    return live.listen((frame) => {
      if (nowSubscribed(frame, `device:${id}`)) void load();
      if (frame.type !== "command") return;
      const changed = frame.command as Command & { device_id: string };
      if (changed.device_id !== id) return;
      setCommands((list) =>
        list.some((c) => c.command_id === changed.command_id)
          ? list.map((c) => (c.command_id === changed.command_id ? { ...c, ...changed } : c))
          : [changed, ...list],
      );
    });
  }, [id]);

  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const text = String(form.get("params") ?? "").trim();
    let params: Record<string, unknown> | undefined;
    try {
      params = text ? jsonObject(text) : undefined;
    } catch (problem) {
      return setError(problem);
    }
    api
      .call<Command>("POST", path(id, "/commands"), { name: String(form.get("name") ?? "").trim(), ...(params ? { params } : {}) })
      .then((a) => {
        take(a.body);
        setError(null);
      }, setError);
  };

  return (
    <Card title="Commands">
      {may(session, "operator") && (
        <form class="filters" onSubmit={submit}>
          <label>
            Command
            <input name="name" required pattern="[A-Za-z0-9:_\-]{1,64}" placeholder="ping" />
          </label>
          <label>
            Parameters (JSON)
            <input name="params" placeholder='{"seconds": 30}' />
          </label>
          <button type="submit">Send command</button>
        </form>
      )}
      <Failure error={error} />
      <table class="devices commands">
        <caption>Latest commands</caption>
        <thead>
          <tr>
            <th scope="col">Command</th>
            <th scope="col">Parameters</th>
            <th scope="col">Status</th>
            <th scope="col">Sent</th>
            <th scope="col">Answer</th>
          </tr>
        </thead>
        <tbody>
          {commands.map((c) => (
            <tr key={c.command_id} data-command={c.command_id} data-status={c.status}>
              <th scope="row">{c.name}</th>
              <td>{JSON.stringify(c.params)}</td>
              <td class="command-status">{c.status}</td>
              <td>{c.issued_at} by {c.issued_by}</td>
              <td>{c.error ?? (c.result === undefined ? "—" : JSON.stringify(c.result))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Card>
  );
}

/** Admins only: the device's certificates (revocable) and a new HTTP-ingest key, shown once. */
export function CredentialsPanel({ id }: { id: string }) {
  const { api } = useHub();
  const [certificates, setCertificates] = useState<Certificate[]>([]);
  const [issuedKey, setIssuedKey] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = () =>
    api.get<{ certificates: Certificate[] }>(path(id, "/certificates")).then((a) => setCertificates(a.body.certificates), setError);
  useEffect(() => void load(), [id]);

  const revoke = (certificate: string) => () => {
    if (!confirm(`Revoke certificate ${certificate.slice(0, 12)}…? The device can no longer connect with it.`)) return;
    api.call("DELETE", path(id, `/certificates/${encodeURIComponent(certificate)}`)).then(load, setError);
  };
  const issueKey = () =>
    api.call<{ api_key: string }>("POST", path(id, "/api-keys"), {}).then((a) => {
      setIssuedKey(a.body.api_key);
      setError(null);
    }, setError);

  return (
    <Card title="Credentials">
      <table class="devices certificates">
        <caption>Certificates (new ones are issued from the device's CSR with hub-admin)</caption>
        <thead>
          <tr>
            <th scope="col">Certificate</th>
            <th scope="col">State</th>
            <th scope="col">Created</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {certificates.map((c) => (
            <tr key={c.certificate_id} data-certificate={c.certificate_id} data-state={c.state}>
              <th scope="row"><code>{c.certificate_id.slice(0, 16)}…</code></th>
              <td>{c.state}{c.retire_at ? ` until ${c.retire_at}` : ""}</td>
              <td>{c.created_at}</td>
              <td>
                {c.state !== "revoked" && (
                  <button type="button" onClick={revoke(c.certificate_id)}>Revoke</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" onClick={issueKey}>Issue an API key</button>
      {issuedKey && (
        <p class="secret" role="status">
          The new key, shown this once: <code data-testid="issued-api-key">{issuedKey}</code>
        </p>
      )}
      <Failure error={error} />
    </Card>
  );
}
