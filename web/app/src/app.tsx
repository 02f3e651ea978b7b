import { CharlaClient } from "@charla/client";
import { useEffect, useState } from "preact/hooks";
import { Chats, Conversation } from "./chats";
import { Notifications } from "./notifications";
import { MyProfile, UserProfile } from "./profile";
import { savedToken, saveToken, socketURL } from "./session";
import { SignIn } from "./signin";
import { Store, type State } from "./store";

/** The screen the hash names. */
export type Route =
  | { name: "chats" }
  | { name: "chat"; chatId: string }
  | { name: "notifications" }
  | { name: "profile" }
  | { name: "user"; userId: number };

/** Reads a route from location.hash ("#/chat/12", ...); anything unknown is the chat list. */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/");
  switch (parts[0]) {
    case "chat":
      return parts[1] && /^[1-9][0-9]*$/.test(parts[1]) ? { name: "chat", chatId: parts[1] } : { name: "chats" };
    case "notifications":
      return { name: "notifications" };
    case "profile":
      return { name: "profile" };
    case "user": {
      const id = Number(parts[1]);
      return Number.isSafeInteger(id) && id > 0 ? { name: "user", userId: id } : { name: "chats" };
    }
    default:
      return { name: "chats" };
  }
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

/** Re-renders on every change of the store. */
function useStoreState(store: Store): State {
  const [state, setState] = useState(store.get());
  useEffect(() => {
    setState(store.get());
    return store.subscribe(() => setState(store.get()));
  }, [store]);
  return state;
}

interface Session {
  client: CharlaClient;
  store: Store;
}

/** The app: the sign-in form, or the signed-in shell. */
export function App() {
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [signInError, setSignInError] = useState<string | undefined>(undefined);

  const signOut = (message?: string) => {
    saveToken(undefined);
    setSession((s) => {
      s?.client.close();
      s?.store.dispose();
      return undefined;
    });
    setSignInError(message);
  };

  const start = (token: string) => {
    const client = new CharlaClient({ url: socketURL(), token });
    const store = new Store(client, () => document.visibilityState === "visible");
    let everConnected = false;
    client.on("connected", () => {
      everConnected = true;
      saveToken(client.token);
    });
    client.on("sessionRefreshed", (s) => saveToken(s.token));
    client.on("sessionEnded", () => signOut("Your session ended. Sign in again."));
    client.on("closed", (c) => {
      if (c.code === 4002) store.notify("Closed: too many open connections for this user. Reload to reconnect.");
    });
    client.on("disconnected", (d) => {
      if (everConnected || d.wasOpen) return;
      // A browser cannot see why an upgrade failed: if the edge answers plain HTTP, the
      // token was refused; otherwise the server is down and the client keeps retrying.
      fetch("/health", { cache: "no-store" }).then(
        (res) => {
          if (res.ok && !everConnected && client.state !== "open") {
            signOut("The server refused this token: it may be wrong, expired or revoked.");
          }
        },
        () => {},
      );
    });
    setSignInError(undefined);
    setSession({ client, store });
    client.connect();
  };

  useEffect(() => {
    const token = savedToken();
    if (token) start(token);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    if (!session) return;
    const online = () => session.client.reconnectNow();
    const visible = () => {
      const chat = session.store.get().viewingChat;
      if (document.visibilityState === "visible" && chat) session.store.markRead(chat);
    };
    addEventListener("online", online);
    document.addEventListener("visibilitychange", visible);
    return () => {
      removeEventListener("online", online);
      document.removeEventListener("visibilitychange", visible);
    };
  }, [session]);

  if (!session) return <SignIn error={signInError} onToken={start} />;
  return <Shell store={session.store} onSignOut={() => signOut()} />;
}

const connLabels: Record<string, string> = {
  idle: "Not connected",
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};

function Shell({ store, onSignOut }: { store: Store; onSignOut: () => void }) {
  const state = useStoreState(store);
  const route = useRoute();
  const label = connLabels[state.conn] ?? state.conn;

  let view;
  switch (route.name) {
    case "chat":
      view = <Conversation key={route.chatId} store={store} state={state} chatId={route.chatId} />;
      break;
    case "notifications":
      view = <Notifications store={store} state={state} />;
      break;
    case "profile":
      view = <MyProfile store={store} state={state} />;
      break;
    case "user":
      view = <UserProfile key={route.userId} store={store} state={state} userId={route.userId} />;
      break;
    default:
      view = (
        <section class="placeholder" aria-label="No chat open">
          <p>Pick a chat to start talking.</p>
        </section>
      );
  }

  return (
    <div class="app" data-route={route.name}>
      <a class="skip" href="#main-content" onClick={(e) => { e.preventDefault(); document.getElementById("main-content")?.focus(); }}>
        Skip to content
      </a>
      <header class="topbar">
        <h1 class="brand">
          <a href="#/chats">Charla</a>
        </h1>
        <p class="conn" role="status" data-state={state.conn} title={state.connDetail || undefined}>
          <span class="conn-dot" aria-hidden="true" />
          {label}
          {state.conn === "reconnecting" && state.connDetail ? <span class="conn-detail"> ({state.connDetail})</span> : null}
        </p>
        <nav aria-label="Main">
          <ul>
            <li>
              <a href="#/chats" aria-current={route.name === "chats" || route.name === "chat" ? "page" : undefined}>
                Chats
              </a>
            </li>
            <li>
              <a href="#/notifications" aria-current={route.name === "notifications" ? "page" : undefined}>
                Notifications
                {state.notificationsUnread > 0 ? (
                  <span class="badge" data-testid="notif-badge" aria-label={`${state.notificationsUnread} unread`}>
                    {state.notificationsUnread}
                  </span>
                ) : null}
              </a>
            </li>
            <li>
              <a href="#/profile" aria-current={route.name === "profile" ? "page" : undefined}>
                Profile
              </a>
            </li>
          </ul>
        </nav>
        <button type="button" class="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {state.notice ? (
        <div class="notice" role="alert">
          <span>{state.notice}</span>
          <button type="button" class="link" onClick={() => store.notify(undefined)} aria-label="Dismiss message">
            ✕
          </button>
        </div>
      ) : null}
      <div class="layout">
        <aside class="sidebar" aria-label="Chats">
          <Chats state={state} activeChat={route.name === "chat" ? route.chatId : undefined} />
        </aside>
        <main id="main-content" tabIndex={-1}>
          {view}
        </main>
      </div>
    </div>
  );
}
