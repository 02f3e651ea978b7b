import { TypingNotifier } from "@charla/client";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { formatTime, fullName, initials, lastSeenText } from "./format";
import type { State, Store, UIMessage } from "./store";

/** The chat list: one link per contact with online dot, last message and unread count. */
export function Chats({ state, activeChat }: { state: State; activeChat: string | undefined }) {
  if (!state.chatsLoaded) return <p class="muted pad">Loading chats…</p>;
  if (state.chats.length === 0) return <p class="muted pad">No contacts yet.</p>;
  return (
    <ul class="chat-list">
      {state.chats.map((c) => {
        const name = fullName(c.otherFirstName, c.otherLastName, c.otherUserName);
        const presence = c.isOtherOnline ? "online" : "offline";
        const unread = c.unreadCount > 0 ? `, ${c.unreadCount} unread` : "";
        return (
          <li key={c.chatId}>
            <a
              href={`#/chat/${c.chatId}`}
              class="chat-item"
              data-chat-id={c.chatId}
              data-user={c.otherUserName}
              aria-current={activeChat === c.chatId ? "page" : undefined}
              aria-label={`${name}, ${presence}${unread}`}
            >
              <span class="avatar" aria-hidden="true">
                {initials(name)}
                <span class="presence" data-online={String(c.isOtherOnline)} />
              </span>
              <span class="chat-main">
                <span class="chat-name">{name}</span>
                <span class="chat-last">{c.lastMessage || <em>No messages yet</em>}</span>
              </span>
              <span class="chat-meta">
                <span class="chat-time">{formatTime(c.lastMessageTs)}</span>
                {c.unreadCount > 0 ? (
                  <span class="badge unread" data-testid="unread">
                    {c.unreadCount}
                  </span>
                ) : null}
              </span>
            </a>
          </li>
        );
      })}
    </ul>
  );
}

const tickLabels = { sent_to_server: "sent", delivered: "delivered", read: "read" } as const;

function Tick({ m }: { m: UIMessage }) {
  if (m.pending) {
    return (
      <span class="tick" data-status="sending" role="img" aria-label="sending">
        🕓
      </span>
    );
  }
  const label = tickLabels[m.status];
  return (
    <span class={`tick ${m.status}`} data-status={m.status} role="img" aria-label={label} title={label}>
      {m.status === "sent_to_server" ? "✓" : "✓✓"}
    </span>
  );
}

/** One conversation: history with paging, ticks, typing indicator and the composer. */
export function Conversation({ store, state, chatId }: { store: Store; state: State; chatId: string }) {
  const conv = state.conversations[chatId];
  const chat = state.chats.find((c) => c.chatId === chatId);
  const name = chat ? fullName(chat.otherFirstName, chat.otherLastName, chat.otherUserName) : "Chat";
  const typing = (state.typing[chatId] ?? []).length > 0;
  const [text, setText] = useState("");
  const listRef = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  const notifier = useMemo(() => new TypingNotifier(store.client, chatId), [store, chatId]);

  useEffect(() => {
    void store.openChat(chatId);
    return () => {
      notifier.dispose();
      store.closeChat();
    };
  }, [store, chatId, notifier]);

  // Keep the newest message in view unless the reader scrolled up.
  const count = conv?.messages.length ?? 0;
  useLayoutEffect(() => {
    const el = listRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [count, chatId]);

  const onScroll = () => {
    const el = listRef.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  const submit = (e: Event) => {
    e.preventDefault();
    const t = text.trim();
    if (!t) return;
    notifier.stop();
    stick.current = true;
    setText("");
    void store.send(chatId, t);
  };

  const older = () => {
    stick.current = false;
    void store.loadOlder(chatId);
  };

  return (
    <section class="conversation" aria-labelledby="conv-title">
      <header class="conv-head">
        <a href="#/chats" class="back" aria-label="Back to chats">
          ←
        </a>
        <div>
          <h2 id="conv-title">
            {chat ? <a href={`#/user/${chat.otherUserId}`}>{name}</a> : name}
          </h2>
          {chat ? (
            <p class="muted small" data-testid="conv-presence">
              {chat.isOtherOnline ? "online" : lastSeenText(false, state.profiles[chat.otherUserId]?.lastSeen ?? 0)}
            </p>
          ) : null}
        </div>
      </header>
      <ol class="messages" ref={listRef} onScroll={onScroll} aria-label={`Messages with ${name}`}>
        {conv?.hasMore ? (
          <li class="older">
            <button type="button" onClick={older} disabled={conv.loading}>
              {conv.loading ? "Loading…" : "Load older messages"}
            </button>
          </li>
        ) : null}
        {!conv?.loaded && conv?.loading ? <li class="muted pad">Loading…</li> : null}
        {conv?.loaded && conv.messages.length === 0 ? <li class="muted pad">No messages yet. Say hola!</li> : null}
        {conv?.messages.map((m) => {
          const mine = m.fromUserId === state.userId;
          return (
            <li key={m.key} class={`msg ${mine ? "mine" : "theirs"}`} data-id={m.id || undefined} data-mine={String(mine)}>
              <p class="msg-text">{m.text}</p>
              <p class="msg-meta">
                <time dateTime={new Date(m.timestamp).toISOString()}>{formatTime(m.timestamp)}</time>
                {mine ? <Tick m={m} /> : null}
              </p>
              {m.error ? (
                <p class="msg-error" role="alert">
                  Not sent: {m.error}{" "}
                  <button type="button" class="link" onClick={() => void store.retry(chatId, m.key)}>
                    Retry
                  </button>
                </p>
              ) : null}
            </li>
          );
        })}
      </ol>
      <p class="typing" role="status" aria-live="polite" data-testid="typing">
        {typing ? `${chat?.otherFirstName || name} is typing…` : ""}
      </p>
      <form class="composer" onSubmit={submit}>
        <label for="composer-input" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          rows={1}
          maxLength={2000}
          placeholder="Write a message"
          value={text}
          onInput={(e) => {
            const v = (e.currentTarget as HTMLTextAreaElement).value;
            setText(v);
            if (v.trim()) notifier.keystroke();
            else notifier.stop();
          }}
          onBlur={() => notifier.stop()}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
          }}
        />
        <button type="submit" disabled={!text.trim() || state.conn !== "open"}>
          Send
        </button>
      </form>
    </section>
  );
}
