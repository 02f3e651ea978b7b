// Package server implements presence.v1.PresenceService (all but StreamEvents, which the
// root package serves from the bus), the announcement of transitions to online contacts,
// and the sweeper that takes the users of dead edges offline.
//
// Concurrency: the store makes every transition exact (one transaction per change, holding
// the user's row). The server adds the order of announcements: a change to a user and its
// announcement run under that user's stripe lock (userLocks), so within one process the
// events about one user leave in the order their transactions committed. Announcements run
// after commit on a context detached from the caller's, so a client that goes away does not
// cancel what its contacts are told; their failures are logged, never returned.
package server
