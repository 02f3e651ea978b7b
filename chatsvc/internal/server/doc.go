// Package server implements the chat service's Connect handler: input rules first, then
// existence and permission checks (docs/protocol.md §3.5), then the store, then events through
// the fan-out publisher. Errors become Connect errors in one place, toConnect.
//
// Messages are written by the store's group-commit Writer; a SendMessage answers only
// after its message is committed and publishes NEW_CHAT_MESSAGE after that. Typing state
// is in memory (see package typing). userNames are cached forever (they never change).
//
// A Server is safe for concurrent use.
package server
