/**
 * Codes of errors raised by the client itself, not by the server. Server codes are the
 * HTTP-like codes of PROTOCOL.md §3 (400, 403, 404, 409, 413, 429, 500, 503, 504).
 */
export const ClientErrorCode = {
  /** The request was made while no connection was ready. */
  NotConnected: 0,
  /** The connection closed before the reply came: the request may or may not have run. */
  ConnectionLost: 1,
  /** No reply came within the client's request timeout. */
  Timeout: 2,
  /** The client was closed. */
  Closed: 3,
  /** The reply did not have the shape the protocol promises. */
  BadReply: 4,
} as const;

/** The error every failed request rejects with: the server's ERROR_NOTIFICATION or a client code. */
export class CharlaError extends Error {
  /** A server code (400, 403, ...) or one of ClientErrorCode (below 100). */
  readonly code: number;
  /** The request type that failed, when there was one. */
  readonly requestType: string | undefined;

  constructor(code: number, message: string, requestType?: string) {
    super(message);
    this.name = "CharlaError";
    this.code = code;
    this.requestType = requestType;
  }

  /** Reports whether the server answered (rather than the connection failing). */
  get fromServer(): boolean {
    return this.code >= 100;
  }
}
