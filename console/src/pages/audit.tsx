// Who changed what: the audit log, newest first, paged (admins).
import { useEffect, useState } from "preact/hooks";
import { useHub } from "../context";
import { Failure } from "../components";
import { latestOnly, Paging, usePages } from "../paging";

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
  const pages = usePages();
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const query = new URLSearchParams({ limit: "50" });
    if (pages.token) query.set("next_token", pages.token);
    return latestOnly(
      api.get<{ entries: Entry[]; next_token: string | null }>(`/v1/audit?${query}`),
      (a) => {
        setEntries(a.body.entries);
        pages.setNext(a.body.next_token);
      },
      setError,
    );
  }, [pages.token]);

  return (
    <>
      <h1>Audit</h1>
      <Failure error={error} />
      <table class="devices">
        <caption>Changes, page {pages.number}</caption>
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
      <Paging label="Pages of the audit log" pages={pages} />
    </>
  );
}
