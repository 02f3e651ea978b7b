package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/charla/charla/presencesvc/internal/presence"
	"github.com/charla/charla/shared/sqldb"
)

// errSetRace reports that the database changed between connectSet's reads and its writes
// (an edge's lease ended, a connection id was taken meanwhile): the batch is recorded
// again connection by connection, which decides each race as Connect does.
var errSetRace = errors.New("connections changed during the batch")

// connectSet records a ConnectMany batch in one transaction with a few statements for all
// of it, instead of Connect's five per connection: it reads the edges' leases and the
// connection ids already recorded, decides each connection's outcome in order exactly as
// Connects made one after the other would (an edge without a lease, a connection id held
// by another user or edge), then locks the users that gain a connection (in id order),
// inserts the new connections with one statement and marks online, with one more, the
// users who were offline. A connection that fails leaves no trace, as Connect's would not.
//
// The outcome follows from two facts: a connection recorded on an edge whose lease runs
// makes its user online (qLiveOnline), so every user who gains one is online afterwards,
// and the first of a user's connections in the batch is the one that changes the state.
// It returns errSetRace, or the database's error, when the batch as a whole could not be
// recorded; trs and errs are then meaningless.
func (s *Store) connectSet(t *tx, conns []presence.Connection, now int64, trs []presence.Transition, errs []error) error {
	// A transaction run again (a busy database, a group run again alone) starts afresh.
	clear(trs)
	clear(errs)
	// The leases of the batch's edges (usually one). Read without a lock first, to know
	// which users to lock; checked again under a share lock after the users' locks, the
	// order Connect takes them in.
	edges := uniqStrings(conns, func(c presence.Connection) string { return c.EdgeID })
	leases, err := s.edgeLeases(t, edges, false)
	if err != nil {
		return err
	}
	// The connection ids already recorded, and by whom.
	held, err := s.heldConnections(t, uniqStrings(conns, func(c presence.Connection) string { return c.ConnectionID }))
	if err != nil {
		return err
	}
	var fresh []presence.Connection // connections to insert, in order
	var users []int64
	for i, c := range conns {
		if lease, ok := leases[c.EdgeID]; !ok || lease == leaseEnded {
			errs[i] = presence.ErrEdgeNotFound
			continue
		}
		switch h, ok := held[c.ConnectionID]; {
		case !ok:
			held[c.ConnectionID] = holder{userID: c.UserID, edgeID: c.EdgeID}
			fresh = append(fresh, c)
		case h.userID != c.UserID || h.edgeID != c.EdgeID:
			errs[i] = presence.ErrConnectionConflict
			continue
		}
		users = append(users, c.UserID)
	}
	if len(users) == 0 {
		return nil
	}
	users = uniq(users) // sorted: every batch locks users in the same order
	before, err := s.lockUsers(t, users)
	if err != nil {
		return err
	}
	if s.afterSetReads != nil {
		s.afterSetReads(t)
	}
	if leases, err = s.edgeLeases(t, edges, true); err != nil {
		return err
	}
	for i, c := range conns {
		if errs[i] == nil {
			if lease, ok := leases[c.EdgeID]; !ok || lease == leaseEnded {
				return errSetRace
			}
		}
	}
	if len(fresh) > 0 {
		query, args := s.addConnectionsQuery(fresh, now)
		res, err := t.exec(query, args...)
		if err != nil {
			return fmt.Errorf("add connections: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(fresh)) {
			return errSetRace // an id was taken after heldConnections read it
		}
	}
	var comingOnline []int64
	seen := make(map[int64]bool, len(users))
	for i, c := range conns {
		if errs[i] != nil {
			continue
		}
		b := before[c.UserID]
		trs[i] = presence.Transition{UserID: c.UserID, IsOnline: true, LastSeen: b.LastSeen}
		if !seen[c.UserID] {
			seen[c.UserID] = true
			if !b.IsOnline {
				trs[i].Changed = true
				comingOnline = append(comingOnline, c.UserID)
			}
		}
	}
	if len(comingOnline) > 0 {
		query, args := s.setOnlineQuery(comingOnline)
		if _, err := t.exec(query, args...); err != nil {
			return fmt.Errorf("store state of %d users: %w", len(comingOnline), err)
		}
	}
	return nil
}

// holder is who holds a connection id.
type holder struct {
	userID int64
	edgeID string
}

// edgeLeases reads the leases of edges (share-locking their rows on MySQL when lock is
// set, as Connect's edgeLease does); an edge without a row is absent.
func (s *Store) edgeLeases(t *tx, edges []string, lock bool) (map[string]int64, error) {
	query := `SELECT EdgeId, LeaseExpiresAt FROM Edge WHERE EdgeId IN (` + sqldb.Placeholders(len(edges)) + `)`
	if lock && s.db.Dialect == sqldb.MySQL {
		query += ` LOCK IN SHARE MODE`
	}
	out := make(map[string]int64, len(edges))
	err := t.each(query, stringArgs(edges), func(rows *sql.Rows) error {
		var id string
		var lease int64
		if err := rows.Scan(&id, &lease); err != nil {
			return err
		}
		out[id] = lease
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read leases of %d edges: %w", len(edges), err)
	}
	return out, nil
}

// heldConnections reads who holds each of ids that is recorded.
func (s *Store) heldConnections(t *tx, ids []string) (map[string]holder, error) {
	query := `SELECT ConnectionId, UserId, EdgeId FROM PresenceConnection WHERE ConnectionId IN (` + sqldb.Placeholders(len(ids)) + `)`
	out := make(map[string]holder, len(ids))
	err := t.each(query, stringArgs(ids), func(rows *sql.Rows) error {
		var id string
		var h holder
		if err := rows.Scan(&id, &h.userID, &h.edgeID); err != nil {
			return err
		}
		out[id] = h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find %d connections: %w", len(ids), err)
	}
	return out, nil
}

// lockUsers locks the UserStatus rows of users (sorted ascending), creating the missing
// ones first on MySQL as lockUser does, and returns their stored state (offline, LastSeen 0
// for a user never seen). On SQLite the writer lock already excludes everyone else.
func (s *Store) lockUsers(t *tx, users []int64) (map[int64]presence.Presence, error) {
	query := `SELECT UserId, IsOnline, LastSeen FROM UserStatus WHERE UserId IN (` + sqldb.Placeholders(len(users)) + `)`
	if s.db.Dialect == sqldb.MySQL {
		ensure := `INSERT INTO UserStatus (UserId, IsOnline, LastSeen) VALUES ` +
			repeatJoin("(?, 0, 0)", len(users)) + ` ON DUPLICATE KEY UPDATE UserId = UserId`
		if _, err := t.exec(ensure, sqldb.Int64Args(users)...); err != nil {
			return nil, fmt.Errorf("create status of %d users: %w", len(users), err)
		}
		query += ` FOR UPDATE`
	}
	out := make(map[int64]presence.Presence, len(users))
	for _, u := range users {
		out[u] = presence.Presence{UserID: u}
	}
	err := t.each(query, sqldb.Int64Args(users), func(rows *sql.Rows) error {
		var p presence.Presence
		if err := rows.Scan(&p.UserID, &p.IsOnline, &p.LastSeen); err != nil {
			return err
		}
		out[p.UserID] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock status of %d users: %w", len(users), err)
	}
	return out, nil
}

// addConnectionsQuery is addConnection for many rows.
func (s *Store) addConnectionsQuery(conns []presence.Connection, now int64) (string, []any) {
	query := `INSERT INTO PresenceConnection (ConnectionId, EdgeId, UserId, ConnectedAt) VALUES ` +
		repeatJoin("(?, ?, ?, ?)", len(conns))
	if s.db.Dialect == sqldb.MySQL {
		query += ` ON DUPLICATE KEY UPDATE ConnectionId = ConnectionId`
	} else {
		query += ` ON CONFLICT (ConnectionId) DO NOTHING`
	}
	args := make([]any, 0, 4*len(conns))
	for _, c := range conns {
		args = append(args, c.ConnectionID, c.EdgeID, c.UserID, now)
	}
	return query, args
}

// setOnlineQuery is setStatus going online (LastSeen kept) for many users.
func (s *Store) setOnlineQuery(users []int64) (string, []any) {
	query := `INSERT INTO UserStatus (UserId, IsOnline, LastSeen) VALUES ` + repeatJoin("(?, 1, 0)", len(users))
	if s.db.Dialect == sqldb.MySQL {
		query += ` ON DUPLICATE KEY UPDATE IsOnline = 1`
	} else {
		query += ` ON CONFLICT (UserId) DO UPDATE SET IsOnline = 1`
	}
	return query, sqldb.Int64Args(users)
}

// each runs query in the transaction and calls scan for every row.
func (t *tx) each(query string, args []any, scan func(*sql.Rows) error) error {
	st, err := t.stmt(query)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(t.ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// uniqStrings returns the distinct key(c) of conns, in first-seen order.
func uniqStrings(conns []presence.Connection, key func(presence.Connection) string) []string {
	out := make([]string, 0, len(conns))
	seen := make(map[string]bool, len(conns))
	for _, c := range conns {
		if k := key(c); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func stringArgs(ss []string) []any {
	args := make([]any, len(ss))
	for i, s := range ss {
		args[i] = s
	}
	return args
}

// repeatJoin is n copies of row joined by ", ".
func repeatJoin(row string, n int) string {
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}
