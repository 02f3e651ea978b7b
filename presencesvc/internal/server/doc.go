// Package server implements presence.v1.PresenceService (all but StreamEvents, which the
// root package serves from the bus), the announcement of transitions to online contacts,
// and the sweeper that takes the users of dead edges offline. Errors become Connect errors
// in one place, toConnect (shared/svcerr).
//
// Concurrency: the store makes every transition exact (one transaction per change, holding
// the user's row). The server adds the order of announcements: a change to a user and the
// queueing of its announcement run under that user's stripe lock (userLocks), and a user's
// announcements go through one FIFO worker (queue.go), so within one process the events
// about one user leave in the order their transactions committed (ConnectMany and
// DisconnectMany hold the stripes of all their users at once, ascending). Connect,
// ConnectMany, Disconnect and DisconnectMany return once the change is committed; the
// workers announce it right after, batching whatever has piled up (one contact lookup and
// one route query per batch), on contexts detached from the callers', so a client that
// goes away does not cancel what its contacts are told. Their failures are logged, never
// returned. Close drains the queue.
package server
