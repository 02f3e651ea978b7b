import type { State, Store } from "./store";

function when(ts: string): string {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** The notifications, newest first, with mark-read. */
export function Notifications({ store, state }: { store: Store; state: State }) {
  return (
    <section class="notifications" aria-labelledby="notif-title">
      <header class="section-head">
        <h2 id="notif-title">Notifications</h2>
        <button type="button" onClick={() => void store.markNotificationRead("all")} disabled={state.notificationsUnread === 0}>
          Mark all as read
        </button>
      </header>
      {!state.notificationsLoaded ? <p class="muted pad">Loading…</p> : null}
      {state.notificationsLoaded && state.notifications.length === 0 ? <p class="muted pad">No notifications.</p> : null}
      <ul class="notif-list">
        {state.notifications.map((n) => (
          <li key={n.id} class={n.isRead ? "notif read" : "notif unread"} data-id={n.id} data-read={String(n.isRead)}>
            <div class="notif-body">
              <h3 class="notif-title">
                {n.isRead ? null : <span class="visually-hidden">Unread: </span>}
                {n.title || n.type}
              </h3>
              {n.message ? <p>{n.message}</p> : null}
              <p class="muted small">
                <time dateTime={n.timestamp}>{when(n.timestamp)}</time>
              </p>
            </div>
            {n.isRead ? null : (
              <button type="button" onClick={() => void store.markNotificationRead(n.id)} aria-label={`Mark "${n.title || n.type}" as read`}>
                Mark as read
              </button>
            )}
          </li>
        ))}
      </ul>
      {state.notificationsHasMore ? (
        <button type="button" class="more" onClick={() => void store.loadNotifications(true)}>
          Load more
        </button>
      ) : null}
    </section>
  );
}
