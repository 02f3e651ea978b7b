// Package server implements the Connect handler of the notification service: input checks,
// the owner's existence (through the profile service), the store, and the live push of
// NEW_NOTIFICATION through the event fan-out. Errors become Connect errors in one place,
// toConnect (shared/svcerr), so no SQL or internal detail reaches a caller.
//
// Order of checks, as docs/protocol.md §3.5 wants: input (invalid_argument naming the field), then
// existence (not_found for an unknown user, or a notification that is not the caller's).
//
// Concurrency: a *Server holds no mutable state of its own and serves calls concurrently;
// ProfileUsers guards its cache of known users with a mutex.
package server
