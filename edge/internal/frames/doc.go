// Package frames is the JSON side of the WebSocket protocol (docs/protocol.md §3–§6): it parses
// client frames and their payload fields with the exact rules of the contract (user ids as
// JSON integers, other ids as decimal strings, null meaning absent), and turns the services'
// proto messages into the reply and event payloads clients expect (ids as strings, lists
// never null, notification timestamps in RFC 3339).
//
// Everything here is pure and safe for concurrent use; nothing holds state.
package frames
