import { render } from "preact";
import { Link, Route, Router, Switch } from "wouter-preact";
import { useHashLocation } from "wouter-preact/use-hash-location";
import { loadConfig, type Config } from "./config";
import { completeSignIn, currentSession, signIn, signOut, type Session } from "./auth";
import { Api } from "./api";
import { Live } from "./live";
import { Context } from "./context";
import { Fleet } from "./pages/fleet";
import { DevicePage } from "./pages/device";
import { Alerts } from "./pages/alerts";
import { Rollouts } from "./pages/rollouts";
import { RolloutPage } from "./pages/rollout";
import { Audit } from "./pages/audit";
import { may } from "./auth";
import "./style.css";

function Shell({ config, session }: { config: Config; session: Session }) {
  return (
    <>
      <header>
        <Link href="/" class="brand">IoT Control Hub</Link>
        <nav aria-label="Pages">
          <Link href="/">Fleet</Link>
          <Link href="/alerts">Alerts</Link>
          <Link href="/rollouts">Firmware and rollouts</Link>
          {may(session, "admin") && <Link href="/audit">Audit</Link>}
        </nav>
        <span class="who">
          {session.username} · {session.role ?? "no role"}
          <button type="button" onClick={() => signOut(config)}>Sign out</button>
        </span>
      </header>
      <main>
        <Switch>
          <Route path="/" component={Fleet} />
          <Route path="/alerts" component={Alerts} />
          <Route path="/rollouts" component={Rollouts} />
          <Route path="/rollouts/:id">{(params) => <RolloutPage key={params.id} id={params.id} />}</Route>
          <Route path="/audit" component={Audit} />
          <Route path="/devices/:id">{(params) => <DevicePage key={params.id} id={params.id} />}</Route>
          <Route>
            <p>Nothing here.</p>
          </Route>
        </Switch>
      </main>
    </>
  );
}

async function start() {
  const root = document.getElementById("app")!;
  try {
    const config = await loadConfig();
    const back = await completeSignIn(config);
    if (back) history.replaceState(null, "", back);
    const session = currentSession();
    if (!session) return void (await signIn(config));
    const live = new Live(config, currentSession);
    live.connect();
    render(
      <Context.Provider value={{ config, session, api: new Api(config, session), live }}>
        {/* Views live in the hash: every path the browser asks for is the one page. */}
        <Router hook={useHashLocation}>
          <Shell config={config} session={session} />
        </Router>
      </Context.Provider>,
      root,
    );
  } catch (error) {
    render(<p role="alert">The console could not start: {String(error)}</p>, root);
  }
}

void start();
