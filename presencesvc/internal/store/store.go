// Package store keeps the presence tables (UserStatus, PresenceConnection, Edge) in SQLite
// or MySQL.
//
// Concurrency: every change to a user's connections runs in one transaction that first
// locks the user's UserStatus row (MySQL: the row is made to exist, then SELECT ... FOR
// UPDATE; SQLite: BEGIN IMMEDIATE takes the database's writer lock), then changes
// PresenceConnection and derives the state from what remains. So two transactions on one
// user never interleave, whichever process runs them, and a transition (offline → online or
// back) is reported by exactly one of them. Lock order is always UserStatus row, then Edge
// row (shared); the statements that lock an Edge row exclusively (leases, edge cleanup) lock
// no user, so no cycle can form. MySQL transactions run at READ COMMITTED, so each statement
// reads the latest committed rows once the user's lock is held; deadlocks and lock-wait
// timeouts are retried
// (sqldb.DB.InTx, the policy every store shares).
//
// On SQLite the store also serializes its own write transactions with a mutex: SQLite has one
// writer anyway, and waiting on a Go mutex is far cheaper than SQLite's sleeping busy handler.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/charla/charla/presencesvc/internal/presence"
	"github.com/charla/charla/shared/sqldb"
)

// leaseEnded is the LeaseExpiresAt of an edge whose lease the sweeper ended (EndLeases).
const leaseEnded = 0

// maxInList bounds the ids of one IN list, well under SQLite's 32766 and MySQL's 65535
// placeholders; longer lists are split. A power of two, see inList.
const maxInList = 4096

// Store is the SQL implementation of presence.Store.
type Store struct {
	db *sqldb.DB
	q  *queries
	// SQLite only: write transactions go to one writer goroutine, which commits
	// them in groups (see writer.go).
	writes    chan *writeReq
	stopWrite chan struct{}
	writerWG  sync.WaitGroup
	closeOnce sync.Once
	// writerTxs counts the transactions the writer began (a group counts once, a rerun
	// alone once each), so that tests can tell that a ConnectMany or a DisconnectMany
	// took one.
	writerTxs atomic.Int64
	// afterSetReads, when set (by tests), runs in connectSet between its reads and its
	// writes: a test makes the race that sends a batch down the one-by-one path there.
	afterSetReads func(t *tx)

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

var _ presence.Store = (*Store)(nil)

// New returns a store over db, whose schema Migrate has applied. It prepares the statements
// that transactions use up front: preparing one later would need a second pooled connection
// while the transaction holds one, and a pool full of such transactions would deadlock.
func New(ctx context.Context, db *sqldb.DB) (*Store, error) {
	q := sqliteQueries
	if db.Dialect == sqldb.MySQL {
		q = mysqlQueries
	}
	s := &Store{db: db, q: q, stmts: make(map[string]*sql.Stmt), stopWrite: make(chan struct{})}
	toPrepare := []string{
		q.lockUser, q.ensureUser, q.setStatus, q.edgeLease, q.startLease, q.addConnection,
		qFindConnection, qDelConnection, qLiveOnline, qHeartbeat,
		qLeaseOf, qEndLeases, qDeadConnections, qReapUser, qDeleteEmptyEdge,
	}
	if db.Dialect == sqldb.SQLite {
		// Only the SQLite writer groups transactions in savepoints (writer.go).
		toPrepare = append(toPrepare, qSavepoint, qRollbackToSavepoint, qReleaseSavepoint)
	}
	for _, query := range toPrepare {
		if query == "" {
			continue
		}
		st, err := db.PrepareContext(ctx, query)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("prepare presence statements: %w", err)
		}
		s.stmts[query] = st
	}
	if db.Dialect == sqldb.SQLite {
		s.writes = make(chan *writeReq)
		s.writerWG.Add(1)
		go s.runWriter()
	}
	return s, nil
}

// Close stops the SQLite writer and releases the prepared statements; the database stays
// open. Calls after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.stopWrite) })
	s.writerWG.Wait()
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	var errs []error
	for k, st := range s.stmts {
		errs = append(errs, st.Close())
		delete(s.stmts, k)
	}
	return errors.Join(errs...)
}

// queries are the statements whose text differs between dialects.
type queries struct {
	// lockUser reads and locks the user's row (no lock clause on SQLite: the transaction
	// already holds the writer lock).
	lockUser string
	// ensureUser creates the user's row if missing, so that it can be locked (MySQL only).
	ensureUser string
	// setStatus is the UserStatus upsert: LastSeen only changes going offline.
	setStatus string
	// edgeLease reads an edge's lease, share-locking the row on MySQL so that edge cleanup
	// cannot remove the edge under a connection being added.
	edgeLease string
	// startLease creates or renews a lease.
	startLease string
	// addConnection inserts a connection, or nothing when its id exists.
	addConnection string
	// deadEdgesForUpdate picks expired edges to remove, locking them on MySQL.
	deadEdgesForUpdate string
}

var sqliteQueries = &queries{
	lockUser: `SELECT IsOnline, LastSeen FROM UserStatus WHERE UserId = ?`,
	setStatus: `INSERT INTO UserStatus (UserId, IsOnline, LastSeen) VALUES (?, ?, ?)
		ON CONFLICT (UserId) DO UPDATE SET
			IsOnline = excluded.IsOnline,
			LastSeen = CASE WHEN excluded.IsOnline = 0 THEN excluded.LastSeen ELSE UserStatus.LastSeen END`,
	edgeLease: `SELECT LeaseExpiresAt FROM Edge WHERE EdgeId = ?`,
	startLease: `INSERT INTO Edge (EdgeId, LeaseExpiresAt) VALUES (?, ?)
		ON CONFLICT (EdgeId) DO UPDATE SET LeaseExpiresAt = excluded.LeaseExpiresAt`,
	addConnection: `INSERT INTO PresenceConnection (ConnectionId, EdgeId, UserId, ConnectedAt) VALUES (?, ?, ?, ?)
		ON CONFLICT (ConnectionId) DO NOTHING`,
	deadEdgesForUpdate: `SELECT EdgeId FROM Edge WHERE LeaseExpiresAt = 0 LIMIT 100`,
}

var mysqlQueries = &queries{
	lockUser:   `SELECT IsOnline, LastSeen FROM UserStatus WHERE UserId = ? FOR UPDATE`,
	ensureUser: `INSERT INTO UserStatus (UserId, IsOnline, LastSeen) VALUES (?, 0, 0) ON DUPLICATE KEY UPDATE UserId = UserId`,
	setStatus: `INSERT INTO UserStatus (UserId, IsOnline, LastSeen) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE
			IsOnline = VALUES(IsOnline),
			LastSeen = CASE WHEN VALUES(IsOnline) = 0 THEN VALUES(LastSeen) ELSE LastSeen END`,
	edgeLease: `SELECT LeaseExpiresAt FROM Edge WHERE EdgeId = ? LOCK IN SHARE MODE`,
	startLease: `INSERT INTO Edge (EdgeId, LeaseExpiresAt) VALUES (?, ?)
		ON DUPLICATE KEY UPDATE LeaseExpiresAt = VALUES(LeaseExpiresAt)`,
	// Without CLIENT_FOUND_ROWS a no-op update counts 0 rows, like SQLite's DO NOTHING.
	addConnection: `INSERT INTO PresenceConnection (ConnectionId, EdgeId, UserId, ConnectedAt) VALUES (?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE ConnectionId = ConnectionId`,
	deadEdgesForUpdate: `SELECT EdgeId FROM Edge WHERE LeaseExpiresAt = 0 LIMIT 100 FOR UPDATE`,
}

// Statements common to both dialects.
const (
	qFindConnection = `SELECT UserId, EdgeId FROM PresenceConnection WHERE ConnectionId = ?`
	qDelConnection  = `DELETE FROM PresenceConnection WHERE ConnectionId = ? AND UserId = ? AND EdgeId = ?`
	// qLiveOnline is the definition of online: a connection on an edge whose lease runs.
	qLiveOnline = `SELECT EXISTS (SELECT 1 FROM PresenceConnection c JOIN Edge e ON e.EdgeId = c.EdgeId
		WHERE c.UserId = ? AND e.LeaseExpiresAt > 0)`
	// qHeartbeat renews a lease the sweeper has not ended, even one past its time (see
	// presence.Store.EndLeases).
	qHeartbeat = `UPDATE Edge SET LeaseExpiresAt = ? WHERE EdgeId = ? AND LeaseExpiresAt > 0`
	qLeaseOf   = `SELECT LeaseExpiresAt FROM Edge WHERE EdgeId = ?`
	// qEndLeases ends the leases past their time (Edge_LeaseExpiresAt).
	qEndLeases = `UPDATE Edge SET LeaseExpiresAt = 0 WHERE LeaseExpiresAt > 0 AND LeaseExpiresAt <= ?`
	qEdgeUsers = `SELECT DISTINCT UserId FROM PresenceConnection WHERE EdgeId = ? LIMIT ?`
	// qUserConnections lists a user's connections, newest first (index PresenceConnection_UserId).
	qUserConnections = `SELECT ConnectionId, EdgeId FROM PresenceConnection WHERE UserId = ? ORDER BY ConnectedAt DESC, ConnectionId DESC`
	qDropEdgeUser    = `DELETE FROM PresenceConnection WHERE UserId = ? AND EdgeId = ?`
	qDeadConnections = `SELECT DISTINCT c.UserId FROM Edge e JOIN PresenceConnection c ON c.EdgeId = e.EdgeId
		WHERE e.LeaseExpiresAt = 0 LIMIT ?`
	// qReapUser also removes connections whose edge row is gone, which nothing should leave
	// behind, so that such a row could never keep a user online.
	qReapUser = `DELETE FROM PresenceConnection WHERE UserId = ? AND NOT EXISTS (
		SELECT 1 FROM Edge e WHERE e.EdgeId = PresenceConnection.EdgeId AND e.LeaseExpiresAt > 0)`
	qDeleteEmptyEdge = `DELETE FROM Edge WHERE EdgeId = ? AND LeaseExpiresAt = 0 AND NOT EXISTS (
		SELECT 1 FROM PresenceConnection c WHERE c.EdgeId = ?)`
)

// prepared returns the statement for query, prepared once on the pool; database/sql
// re-prepares it per connection and keeps it, which saves a parse (SQLite) or two round
// trips (MySQL) on every call. It must not be called inside a transaction for a statement
// New did not prepare (see New); the mutex is not held while preparing, for the same reason.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st, ok := s.stmts[query]
	s.stmtMu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if prev, ok := s.stmts[query]; ok {
		st.Close()
		return prev, nil
	}
	s.stmts[query] = st
	return st, nil
}

// tx is a transaction with access to the prepared statements.
type tx struct {
	*sql.Tx
	s   *Store
	ctx context.Context
	// bound holds the statements already bound to this transaction: a group transaction
	// (writer.go) runs the same few statements for every request, and binding one anew
	// each time was a visible share of the writer's allocations.
	bound map[string]*sql.Stmt
}

func (t *tx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := t.bound[query]; ok {
		return st, nil
	}
	t.s.stmtMu.Lock()
	st, ok := t.s.stmts[query]
	t.s.stmtMu.Unlock()
	var err error
	if ok {
		st = t.StmtContext(t.ctx, st)
	} else {
		// Not prepared by New: prepare on the transaction's own connection.
		if st, err = t.PrepareContext(t.ctx, query); err != nil {
			return nil, err
		}
	}
	if t.bound == nil {
		t.bound = make(map[string]*sql.Stmt)
	}
	t.bound[query] = st // closed by the transaction's commit or rollback
	return st, nil
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil {
		// A *sql.Row cannot be built with an error; fall back to an unprepared query,
		// which reports the same problem through Scan.
		return t.QueryRowContext(t.ctx, query, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

// inTx runs fn in a write transaction under the policy every store shares (sqldb.DB.InTx:
// READ COMMITTED on MySQL, run again after a lost lock race). On SQLite it goes through
// the writer (writer.go), which applies the same policy.
func (s *Store) inTx(ctx context.Context, fn func(t *tx) error) error {
	if s.db.Dialect != sqldb.MySQL {
		return s.write(ctx, fn)
	}
	return s.runTx(ctx, fn)
}

// runTx runs fn in a transaction of its own (sqldb.DB.InTx).
func (s *Store) runTx(ctx context.Context, fn func(t *tx) error) error {
	return s.db.InTx(ctx, func(sqlTx *sql.Tx) error {
		return fn(&tx{Tx: sqlTx, s: s, ctx: ctx})
	})
}

// lockUser locks the user's UserStatus row for the rest of the transaction and returns the
// stored state (offline, LastSeen 0 for a user never seen).
func (t *tx) lockUser(userID int64) (presence.Presence, error) {
	p := presence.Presence{UserID: userID}
	err := t.queryRow(t.s.q.lockUser, userID).Scan(&p.IsOnline, &p.LastSeen)
	if errors.Is(err, sql.ErrNoRows) && t.s.q.ensureUser != "" {
		// MySQL: a missing row cannot be locked, so create it (offline, never seen) and
		// lock it; concurrent creators wait on each other at the insert.
		if _, err := t.exec(t.s.q.ensureUser, userID); err != nil {
			return p, fmt.Errorf("create status of user %d: %w", userID, err)
		}
		err = t.queryRow(t.s.q.lockUser, userID).Scan(&p.IsOnline, &p.LastSeen)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil // SQLite: the writer lock already excludes everyone else
	}
	if err != nil {
		return p, fmt.Errorf("lock status of user %d: %w", userID, err)
	}
	return p, nil
}

// settle derives the user's state from the connections that remain and, on a real
// transition, stores it with the setStatus upsert. before is what lockUser returned.
func (t *tx) settle(before presence.Presence, now int64) (presence.Transition, error) {
	var online bool
	if err := t.queryRow(qLiveOnline, before.UserID).Scan(&online); err != nil {
		return presence.Transition{}, fmt.Errorf("derive state of user %d: %w", before.UserID, err)
	}
	tr := presence.Transition{UserID: before.UserID, IsOnline: online, LastSeen: before.LastSeen}
	if online == before.IsOnline {
		return tr, nil
	}
	lastSeen := int64(0) // ignored by the upsert when going online
	if !online {
		lastSeen = now
		tr.LastSeen = now
	}
	if _, err := t.exec(t.s.q.setStatus, before.UserID, online, lastSeen); err != nil {
		return presence.Transition{}, fmt.Errorf("store state of user %d: %w", before.UserID, err)
	}
	tr.Changed = true
	return tr, nil
}

// Connect implements presence.Store.
func (s *Store) Connect(ctx context.Context, edgeID string, userID int64, connectionID string, now int64) (presence.Transition, error) {
	var tr presence.Transition
	err := s.inTx(ctx, s.connectFn(presence.Connection{EdgeID: edgeID, UserID: userID, ConnectionID: connectionID}, now, &tr))
	return tr, err
}

// mysqlConnectWorkers bounds the transactions of one ConnectMany or DisconnectMany that
// run at once on MySQL: enough to overlap their round trips and commits, few enough to
// leave the pool to everyone else.
const mysqlConnectWorkers = 4

// ConnectMany implements presence.Store. On SQLite every connection is a savepoint of one
// writer group, so a whole batch costs one BEGIN and one COMMIT. On MySQL each runs in a
// transaction of its own, as Connect, a few at a time (mysqlConnectWorkers); a user's
// connections run one after the other, in their order.
func (s *Store) ConnectMany(ctx context.Context, conns []presence.Connection, now int64) []presence.ConnectionResult {
	out := make([]presence.ConnectionResult, len(conns))
	if len(conns) == 0 {
		return out
	}
	// First the whole batch with a few statements in one transaction (connectset.go);
	// when that fails as a whole, connection by connection, each in a savepoint or a
	// transaction of its own, which also settles any race as Connect would.
	trs, setErrs := make([]presence.Transition, len(conns)), make([]error, len(conns))
	set := func(t *tx) error { return s.connectSet(t, conns, now, trs, setErrs) }
	var err error
	if s.db.Dialect != sqldb.MySQL {
		err = s.write(ctx, set)
	} else {
		err = s.runTx(ctx, set)
	}
	if err == nil {
		for i := range out {
			out[i] = presence.ConnectionResult{Transition: trs[i], Err: setErrs[i]}
		}
		return out
	}
	if ctx.Err() != nil {
		for i := range out {
			out[i].Err = ctx.Err()
		}
		return out
	}
	return s.oneByOne(ctx, conns, now, s.connectFn)
}

// DisconnectMany implements presence.Store. On SQLite every connection is a savepoint of
// one writer group, so a whole batch costs one BEGIN and one COMMIT. On MySQL each runs in
// a transaction of its own, as Disconnect, a few at a time (mysqlConnectWorkers); a user's
// connections run one after the other, in their order, so that only the last makes the
// user offline. Unlike ConnectMany there is no few-statement first pass (connectSet): each
// connection costs Disconnect's statements, only the commits are shared.
func (s *Store) DisconnectMany(ctx context.Context, conns []presence.Connection, now int64) []presence.ConnectionResult {
	return s.oneByOne(ctx, conns, now, s.disconnectFn)
}

// oneByOne runs the transaction fn makes for each connection as one of its own as far as
// its outcome goes: on SQLite as savepoints of one writer group (writeMany), on MySQL
// side by side by chains (runEachByUser). It returns their outcomes in order.
func (s *Store) oneByOne(ctx context.Context, conns []presence.Connection, now int64, fn func(presence.Connection, int64, *presence.Transition) func(*tx) error) []presence.ConnectionResult {
	out := make([]presence.ConnectionResult, len(conns))
	if len(conns) == 0 {
		return out
	}
	fns := make([]func(t *tx) error, len(conns))
	for i, c := range conns {
		fns[i] = fn(c, now, &out[i].Transition)
	}
	var errs []error
	if s.db.Dialect != sqldb.MySQL {
		errs = s.writeMany(ctx, fns)
	} else {
		errs = s.runEachByUser(ctx, conns, fns)
	}
	for i, err := range errs {
		if err != nil {
			// A savepoint rolled back, or a group run again, may have left a transition
			// behind: a failed connection has none.
			out[i] = presence.ConnectionResult{Err: err}
		}
	}
	return out
}

// runEachByUser runs each fns[i] (the transaction of conns[i]) in a transaction of its
// own, mysqlConnectWorkers at a time. Connections whose outcomes depend on each other's
// order (the same user, or the same connection id) form one chain, run by one worker in
// their order, so that the outcomes are those of Connects (or Disconnects) made one after
// the other. Each transaction locks one user's row (a Connect's then an edge's row in
// share mode), as Connect and Disconnect do; none holds two users, so running chains side
// by side adds no lock cycle.
func (s *Store) runEachByUser(ctx context.Context, conns []presence.Connection, fns []func(t *tx) error) []error {
	errs := make([]error, len(fns))
	jobs := make(chan []int)
	chains := connectChains(conns)
	var wg sync.WaitGroup
	for range min(mysqlConnectWorkers, len(chains)) {
		wg.Go(func() {
			for chain := range jobs {
				for _, i := range chain {
					errs[i] = s.runTx(ctx, fns[i])
				}
			}
		})
	}
	for _, chain := range chains {
		jobs <- chain
	}
	close(jobs)
	wg.Wait()
	return errs
}

// connectChains splits the indexes of conns into chains, each in the given order: two
// connections of one user, or with one connection id, are in the same chain (directly or
// through others); connections in different chains cannot change each other's outcome.
func connectChains(conns []presence.Connection) [][]int {
	parent := make([]int, len(conns))
	root := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	byUser := make(map[int64]int, len(conns))
	byConn := make(map[string]int, len(conns))
	for i, c := range conns {
		parent[i] = i
		for _, first := range []int{firstOr(byUser, c.UserID, i), firstOr(byConn, c.ConnectionID, i)} {
			if a, b := root(first), root(i); a != b {
				parent[max(a, b)] = min(a, b) // the root is a chain's first connection
			}
		}
	}
	var chains [][]int
	at := make(map[int]int) // root → its chain in chains
	for i := range conns {
		r := root(i)
		k, ok := at[r]
		if !ok {
			k = len(chains)
			at[r] = k
			chains = append(chains, nil)
		}
		chains[k] = append(chains[k], i)
	}
	return chains
}

// firstOr returns the index m holds for key, after recording i there if it held none.
func firstOr[K comparable](m map[K]int, key K, i int) int {
	if first, ok := m[key]; ok {
		return first
	}
	m[key] = i
	return i
}

// connectFn returns the transaction that records c, setting *tr when it succeeds.
func (s *Store) connectFn(c presence.Connection, now int64, tr *presence.Transition) func(t *tx) error {
	edgeID, userID, connectionID := c.EdgeID, c.UserID, c.ConnectionID
	return func(t *tx) error {
		before, err := t.lockUser(userID)
		if err != nil {
			return err
		}
		var lease int64
		err = t.queryRow(s.q.edgeLease, edgeID).Scan(&lease)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && lease == leaseEnded) {
			return presence.ErrEdgeNotFound
		}
		if err != nil {
			return fmt.Errorf("read lease of edge %s: %w", edgeID, err)
		}
		// Insert first: a new connection (the usual case) costs one statement; a repeat
		// inserts nothing and is checked against the connection already recorded.
		res, err := t.exec(s.q.addConnection, connectionID, edgeID, userID, now)
		if err != nil {
			return fmt.Errorf("add connection: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			var holder int64
			var holderEdge string
			if err := t.queryRow(qFindConnection, connectionID).Scan(&holder, &holderEdge); err != nil {
				return fmt.Errorf("find connection: %w", err)
			}
			if holder != userID || holderEdge != edgeID {
				return presence.ErrConnectionConflict
			}
		}
		*tr, err = t.settle(before, now)
		return err
	}
}

// Disconnect implements presence.Store.
func (s *Store) Disconnect(ctx context.Context, edgeID string, userID int64, connectionID string, now int64) (presence.Transition, error) {
	var tr presence.Transition
	err := s.inTx(ctx, s.disconnectFn(presence.Connection{EdgeID: edgeID, UserID: userID, ConnectionID: connectionID}, now, &tr))
	return tr, err
}

// disconnectFn returns the transaction that removes c, setting *tr when it succeeds. A
// connection not recorded (never, or already removed) deletes nothing and settles the
// user's state unchanged: Disconnect is idempotent.
func (s *Store) disconnectFn(c presence.Connection, now int64, tr *presence.Transition) func(t *tx) error {
	return func(t *tx) error {
		before, err := t.lockUser(c.UserID)
		if err != nil {
			return err
		}
		if _, err := t.exec(qDelConnection, c.ConnectionID, c.UserID, c.EdgeID); err != nil {
			return fmt.Errorf("remove connection: %w", err)
		}
		*tr, err = t.settle(before, now)
		return err
	}
}

// StartLease implements presence.Store.
func (s *Store) StartLease(ctx context.Context, edgeID string, leaseUntil int64) error {
	return s.inTx(ctx, func(t *tx) error {
		if _, err := t.exec(s.q.startLease, edgeID, leaseUntil); err != nil {
			return fmt.Errorf("start lease of edge %s: %w", edgeID, err)
		}
		return nil
	})
}

// Heartbeat implements presence.Store.
func (s *Store) Heartbeat(ctx context.Context, edgeID string, leaseUntil int64) error {
	return s.inTx(ctx, func(t *tx) error {
		res, err := t.exec(qHeartbeat, leaseUntil, edgeID)
		if err != nil {
			return fmt.Errorf("renew lease of edge %s: %w", edgeID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n > 0 {
			return nil
		}
		// MySQL counts only changed rows: a renewal to the same millisecond changes none.
		var lease int64
		err = t.queryRow(qLeaseOf, edgeID).Scan(&lease)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && lease == leaseEnded) {
			return presence.ErrEdgeNotFound
		}
		if err != nil {
			return fmt.Errorf("read lease of edge %s: %w", edgeID, err)
		}
		return nil
	})
}

// EndLeases implements presence.Store.
func (s *Store) EndLeases(ctx context.Context, now int64) (int64, error) {
	var ended int64
	err := s.inTx(ctx, func(t *tx) error {
		res, err := t.exec(qEndLeases, now)
		if err != nil {
			return fmt.Errorf("end expired leases: %w", err)
		}
		ended, _ = res.RowsAffected()
		return nil
	})
	return ended, err
}

// DeadConnectionUsers implements presence.Store.
func (s *Store) DeadConnectionUsers(ctx context.Context, limit int) ([]int64, error) {
	return s.userList(ctx, qDeadConnections, limit)
}

// ReapUser implements presence.Store.
func (s *Store) ReapUser(ctx context.Context, userID int64, now int64) (presence.Transition, error) {
	var tr presence.Transition
	err := s.inTx(ctx, func(t *tx) error {
		before, err := t.lockUser(userID)
		if err != nil {
			return err
		}
		if _, err := t.exec(qReapUser, userID); err != nil {
			return fmt.Errorf("remove dead connections: %w", err)
		}
		tr, err = t.settle(before, now)
		return err
	})
	return tr, err
}

// DeleteDeadEdges implements presence.Store.
func (s *Store) DeleteDeadEdges(ctx context.Context) (int64, error) {
	var deleted int64
	err := s.inTx(ctx, func(t *tx) error {
		deleted = 0
		// On MySQL the rows are locked first: a Connect holding an edge's row in share mode
		// finishes before the edge can go, and the emptiness check below (a new statement
		// at READ COMMITTED) then sees its connection.
		rows, err := t.QueryContext(ctx, s.q.deadEdgesForUpdate)
		if err != nil {
			return fmt.Errorf("find dead edges: %w", err)
		}
		var edges []string
		for rows.Next() {
			var e string
			if err := rows.Scan(&e); err != nil {
				rows.Close()
				return fmt.Errorf("find dead edges: %w", err)
			}
			edges = append(edges, e)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("find dead edges: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find dead edges: %w", err)
		}
		for _, e := range edges {
			res, err := t.exec(qDeleteEmptyEdge, e, e)
			if err != nil {
				return fmt.Errorf("delete dead edge %s: %w", e, err)
			}
			if n, err := res.RowsAffected(); err == nil {
				deleted += n
			}
		}
		return nil
	})
	return deleted, err
}

// Routes implements presence.Store with one query per maxInList users.
func (s *Store) Routes(ctx context.Context, userIDs []int64) (map[int64][]string, error) {
	routes := make(map[int64][]string)
	for chunk := range slices.Chunk(uniq(userIDs), maxInList) {
		marks, args := sqldb.PaddedIn(chunk, 0)
		st, err := s.prepared(ctx, `SELECT DISTINCT c.UserId, c.EdgeId FROM PresenceConnection c
			JOIN Edge e ON e.EdgeId = c.EdgeId
			WHERE c.UserId IN (`+marks+`) AND e.LeaseExpiresAt > 0
			ORDER BY c.UserId, c.EdgeId`)
		if err != nil {
			return nil, err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("look up routes: %w", err)
		}
		for rows.Next() {
			var u int64
			var e string
			if err := rows.Scan(&u, &e); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up routes: %w", err)
			}
			routes[u] = append(routes[u], e)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("look up routes: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("look up routes: %w", err)
		}
	}
	return routes, nil
}

// Presences implements presence.Store with one query per maxInList users.
func (s *Store) Presences(ctx context.Context, userIDs []int64) (map[int64]presence.Presence, error) {
	out := make(map[int64]presence.Presence)
	for chunk := range slices.Chunk(uniq(userIDs), maxInList) {
		marks, args := sqldb.PaddedIn(chunk, 0)
		st, err := s.prepared(ctx, `SELECT UserId, IsOnline, LastSeen FROM UserStatus WHERE UserId IN (`+marks+`)`)
		if err != nil {
			return nil, err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("read presence: %w", err)
		}
		for rows.Next() {
			var p presence.Presence
			if err := rows.Scan(&p.UserID, &p.IsOnline, &p.LastSeen); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read presence: %w", err)
			}
			out[p.UserID] = p
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("read presence: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read presence: %w", err)
		}
	}
	return out, nil
}

// userList runs a query returning one column of user ids.
func (s *Store) userList(ctx context.Context, query string, args ...any) ([]int64, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := sqldb.Int64s(rows)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// uniq returns the distinct ids, sorted.
func uniq(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// EdgeConnection is a connection and the edge that holds it.
type EdgeConnection struct {
	ConnectionID, EdgeID string
}

// ExcessConnections returns the user's connections beyond its newest keep, oldest last
// (docs/protocol.md §8.5: those are closed with 4002).
func (s *Store) ExcessConnections(ctx context.Context, userID int64, keep int) ([]EdgeConnection, error) {
	st, err := s.prepared(ctx, qUserConnections)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list connections of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []EdgeConnection
	for i := 0; rows.Next(); i++ {
		var c EdgeConnection
		if err := rows.Scan(&c.ConnectionID, &c.EdgeID); err != nil {
			return nil, fmt.Errorf("list connections of user %d: %w", userID, err)
		}
		if i >= keep {
			out = append(out, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list connections of user %d: %w", userID, err)
	}
	return out, nil
}
