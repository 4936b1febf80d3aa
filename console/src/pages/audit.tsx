// Who changed what: the audit log, newest first, paged (admins).
import { useEffect, useState } from "preact/hooks";
import { useHub } from "../context";
import { Failure } from "../components";

interface Entry {
  at: string;
  actor: string;
  role: string;
  action: string;
  target?: string;
  outcome: string;
  status?: number;
}

export function Audit() {
  const { api } = useHub();
  const [entries, setEntries] = useState<Entry[]>([]);
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const token = tokens[tokens.length - 1];

  useEffect(() => {
    const query = new URLSearchParams({ limit: "50" });
    if (token) query.set("next_token", token);
    let current = true;
    api.get<{ entries: Entry[]; next_token: string | null }>(`/v1/audit?${query}`).then((a) => {
      if (!current) return;
      setEntries(a.body.entries);
      setNext(a.body.next_token);
    }, (e) => current && setError(e));
    return () => {
      current = false;
    };
  }, [token]);

  return (
    <>
      <h1>Audit</h1>
      <Failure error={error} />
      <table class="devices">
        <caption>Changes, page {tokens.length}</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e, i) => (
            <tr key={`${e.at}-${i}`}>
              <td>{e.at}</td>
              <th scope="row">
                {e.actor} ({e.role})
              </th>
              <td>{e.action}</td>
              <td>{e.target ?? "—"}</td>
              <td>
                {e.outcome}
                {e.status ? ` ${e.status}` : ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <nav class="paging" aria-label="Pages of the audit log">
        <button type="button" disabled={tokens.length === 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Previous
        </button>
        <button type="button" disabled={!next} onClick={() => next && setTokens([...tokens, next])}>
          Next
        </button>
      </nav>
    </>
  );
}
