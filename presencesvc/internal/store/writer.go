package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("presence store closed")

// maxGroup bounds the write transactions committed together.
const maxGroup = 64

// The savepoint statements of a group, prepared once (New) like the others: parsing them
// anew for every request was a visible share of the writer's time.
const (
	qSavepoint           = `SAVEPOINT w`
	qRollbackToSavepoint = `ROLLBACK TO w`
	qReleaseSavepoint    = `RELEASE w`
)

// writeReq is one write transaction waiting for the SQLite writer.
type writeReq struct {
	ctx  context.Context
	fn   func(t *tx) error
	done chan error
}

// write hands fn to the writer goroutine and waits for its outcome, which is known only
// once its group has committed.
func (s *Store) write(ctx context.Context, fn func(t *tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopWrite:
		return ErrClosed
	}
	// Once taken, a request always completes: the writer does not stop mid-group.
	return <-req.done
}

// runWriter is the SQLite writer: SQLite has one writer at a time anyway, and running the
// waiting transactions back to back in one goroutine, as savepoints of one transaction with
// one commit, costs far less than handing a lock and a commit from request to request.
func (s *Store) runWriter() {
	defer s.writerWG.Done()
	for {
		var first *writeReq
		select {
		case first = <-s.writes:
		case <-s.stopWrite:
			return
		}
		group := []*writeReq{first}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
			default:
				break fill
			}
		}
		s.runGroup(group)
	}
}

// runGroup runs a group of write transactions and reports each outcome after the commit.
// Each runs inside a savepoint, so one that fails leaves no trace and the others still
// commit. If the group as a whole fails (the commit, a savepoint), each is run again alone.
func (s *Store) runGroup(group []*writeReq) {
	live := group[:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		r := live[0]
		r.done <- s.runTx(r.ctx, r.fn)
		return
	}
	results, err := s.groupTx(live)
	if err != nil {
		for _, r := range live {
			r.done <- s.runTx(r.ctx, r.fn)
		}
		return
	}
	for i, r := range live {
		r.done <- results[i]
	}
}

// groupTx runs every request in a savepoint of one transaction (sqldb.DB.InTx, so a busy
// database runs the group again). Statements use a context of their own, not the
// requests': interrupting a statement could roll back the whole transaction, and everyone
// else's work with it.
func (s *Store) groupTx(group []*writeReq) ([]error, error) {
	ctx := context.Background()
	results := make([]error, len(group))
	err := s.db.InTx(ctx, func(sqlTx *sql.Tx) error {
		t := &tx{Tx: sqlTx, s: s, ctx: ctx}
		for i, r := range group {
			if _, err := t.exec(qSavepoint); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			if results[i] = r.fn(t); results[i] != nil {
				if _, err := t.exec(qRollbackToSavepoint); err != nil {
					return fmt.Errorf("rollback to savepoint: %w", err)
				}
			}
			if _, err := t.exec(qReleaseSavepoint); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("group transaction: %w", err)
	}
	return results, nil
}
