import { useEffect, useState } from "preact/hooks";
import { demoSession, demoUsers, type DemoUser } from "./session";

/** Sign-in: paste a session token, or (demo mode) pick a demo user. */
export function SignIn({ error, onToken }: { error: string | undefined; onToken: (token: string) => void }) {
  const [token, setToken] = useState("");
  const [users, setUsers] = useState<DemoUser[]>([]);
  const [busy, setBusy] = useState(false);
  const [demoError, setDemoError] = useState<string | undefined>(undefined);

  useEffect(() => {
    void demoUsers().then(setUsers);
  }, []);

  const submit = (e: Event) => {
    e.preventDefault();
    const t = token.trim().replace(/^Bearer\s+/i, "");
    if (t) onToken(t);
  };

  const pick = async (userName: string) => {
    setBusy(true);
    setDemoError(undefined);
    try {
      onToken(await demoSession(userName));
    } catch (err) {
      setDemoError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main-content">
      <h1 class="brand">Charla</h1>
      {error ? (
        <p class="notice" role="alert">
          {error}
        </p>
      ) : null}
      {users.length > 0 ? (
        <section aria-labelledby="demo-title" class="card">
          <h2 id="demo-title">Demo users</h2>
          <p class="muted small">This server runs in demo mode: continue as one of its users.</p>
          <ul class="demo-users">
            {users.map((u) => (
              <li key={u.userName}>
                <button type="button" disabled={busy} onClick={() => void pick(u.userName)} data-user={u.userName}>
                  Continue as {u.firstName} {u.lastName} <span class="muted">(@{u.userName})</span>
                </button>
              </li>
            ))}
          </ul>
          {demoError ? <p role="alert">{demoError}</p> : null}
        </section>
      ) : null}
      <form class="card" onSubmit={submit}>
        <h2>Sign in with a token</h2>
        <label for="token">Session token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellcheck={false}
          required
          value={token}
          onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
        />
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
