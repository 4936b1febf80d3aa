// Every device with its type, group, connectivity, firmware, newest reading and
// quarantine, paged over the list API; live: registry changes from `fleet`, readings from
// the channels of the devices on the page.
import { useEffect, useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { useHub } from "../context";
import type { Device, FleetSummary, Page } from "../api";
import { Card, Failure, SimulationWatermark, Status } from "../components";
import { latestOnly, Paging, usePages } from "../paging";

const PAGE_SIZE = 48;

function Counts({ title, counts }: { title: string; counts: Record<string, number> }) {
  return (
    <div class="counts">
      <h3>{title}</h3>
      <dl>
        {Object.entries(counts).map(([name, n]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>{n}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

function reading(device: Device): string {
  const latest = device.latest;
  if (!latest) return "—";
  return Object.entries(latest.metrics)
    .map(([name, value]) => `${name} ${Number(value).toFixed(2)}`)
    .join(", ");
}

export function Fleet() {
  const { api, live } = useHub();
  const [summary, setSummary] = useState<FleetSummary | null>(null);
  const [devices, setDevices] = useState<Device[]>([]);
  const [simulated, setSimulated] = useState(false);
  const [filters, setFilters] = useState({ type: "", status: "", group: "" });
  const pages = usePages();
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    api.get<FleetSummary>("/v1/fleet/summary").then((a) => setSummary(a.body), setError);
  }, []);

  useEffect(() => {
    const query = new URLSearchParams({ include: "latest", limit: String(PAGE_SIZE) });
    for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
    if (pages.token) query.set("next_token", pages.token);
    // An answer to an earlier filter or page that arrives late is dropped.
    return latestOnly(
      api.get<Page<Device>>(`/v1/devices?${query}`),
      (answer) => {
        setDevices(answer.body.devices);
        pages.setNext(answer.body.next_token);
        setSimulated(answer.simulated || answer.body.devices.some((d) => d.simulated));
        setError(null);
      },
      setError,
    );
  }, [filters, pages.token]);

  // The page's devices' channels and the registry's.
  useEffect(() => {
    live.want(["fleet", ...devices.map((d) => `device:${d.device_id}`)]);
  }, [devices]);

  useEffect(
    () =>
      live.listen((frame) => {
        if (frame.type === "reading") {
          const id = frame.device_id as string;
          setDevices((shown) =>
            shown.map((d) =>
              d.device_id === id
                ? { ...d, latest: { ts: frame.ts as string, metrics: frame.metrics as Record<string, number> } }
                : d,
            ),
          );
          if (frame.simulated) setSimulated(true);
        } else if (frame.type === "device") {
          const changed = frame.device as Partial<Device> & { device_id: string };
          setDevices((shown) =>
            shown.map((d) => (d.device_id === changed.device_id ? { ...d, ...changed, latest: d.latest } : d)),
          );
        }
      }),
    [],
  );

  const apply = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const value = (name: string) => String(form.get(name) ?? "").trim();
    pages.reset();
    setFilters({ type: value("type"), status: value("status"), group: value("group") });
  };

  return (
    <>
      <h1>Fleet</h1>
      <SimulationWatermark shown={simulated} />
      <Failure error={error} />
      {summary && (
        <Card title="Summary">
          <p>
            {summary.in_service} in service of {summary.devices}; {summary.quarantined} quarantined;{" "}
            {summary.simulated} simulated
          </p>
          <div class="summary">
            <Counts title="Connectivity" counts={summary.by_connectivity} />
            <Counts title="Status" counts={summary.by_status} />
            <Counts title="Type" counts={summary.by_type} />
            <Counts title="Firmware" counts={summary.by_firmware_version} />
          </div>
        </Card>
      )}
      <form class="filters" onSubmit={apply} aria-label="Filters">
        <label>
          Type <input name="type" defaultValue={filters.type} />
        </label>
        <label>
          Group <input name="group" defaultValue={filters.group} />
        </label>
        <label>
          Status
          <select name="status" defaultValue={filters.status}>
            <option value="">any</option>
            <option value="registered">registered</option>
            <option value="active">active</option>
            <option value="decommissioned">decommissioned</option>
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      <table class="devices">
        <caption>Devices, page {pages.number}</caption>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Type</th>
            <th scope="col">Group</th>
            <th scope="col">Connectivity</th>
            <th scope="col">Firmware</th>
            <th scope="col">Last reading</th>
            <th scope="col">Quarantine</th>
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => (
            <tr key={d.device_id} data-device={d.device_id}>
              <th scope="row">
                <Link href={`/devices/${encodeURIComponent(d.device_id)}`}>{d.device_id}</Link>
                {d.simulated && <span class="badge">simulated</span>}
              </th>
              <td>{d.device_type}</td>
              <td>{d.group ?? "—"}</td>
              <td>
                <Status value={d.connectivity} />
              </td>
              <td>{d.firmware_version ?? "—"}</td>
              <td class="reading">{reading(d)}</td>
              <td>{d.quarantined ? "quarantined" : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Paging label="Pages of devices" pages={pages} />
    </>
  );
}
