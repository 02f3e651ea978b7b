// @charla/client: a typed WebSocket client for Charla. See README.md.
export * from "./types.js";
export { compareIds, isId, maxId } from "./ids.js";
export { CharlaError, ClientErrorCode } from "./errors.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export {
  CharlaClient,
  type ClientEvents,
  type ClientOptions,
  type ConnectedInfo,
  type ConnectionState,
  type DisconnectedInfo,
  type EventFrame,
  type RefetchReason,
  type SocketConstructor,
  type SocketLike,
} from "./client.js";
export { TYPING_RELAY_WINDOW_MS, TypingNotifier, TypingTracker, type TypingChange, type TypingNotifierOptions } from "./typing.js";
