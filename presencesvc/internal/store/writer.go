package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("presence store closed")

// maxGroup bounds the write transactions the writer gathers into one group. A request
// that carries more functions (a ConnectMany, a DisconnectMany) is never split: it is
// committed whole, in a group of its own or with the requests gathered before it.
const maxGroup = 64

// The savepoint statements of a group, prepared once (New) like the others: parsing them
// anew for every request was a visible share of the writer's time.
const (
	qSavepoint           = `SAVEPOINT w`
	qRollbackToSavepoint = `ROLLBACK TO w`
	qReleaseSavepoint    = `RELEASE w`
)

// writeReq is one or more write transactions of one caller waiting for the SQLite writer.
// Each function is a transaction of its own as far as its outcome goes (a savepoint of the
// group, or a transaction alone), in the order given; they share the caller's context.
type writeReq struct {
	ctx  context.Context
	fns  []func(t *tx) error
	errs []error       // one per function, set before done is closed
	done chan struct{} // closed once every outcome is known, after the commit
}

// finish sets every outcome to err and completes the request.
func (r *writeReq) finish(err error) {
	for i := range r.errs {
		r.errs[i] = err
	}
	close(r.done)
}

// write hands fn to the writer goroutine and waits for its outcome, which is known only
// once its group has committed.
func (s *Store) write(ctx context.Context, fn func(t *tx) error) error {
	return s.writeMany(ctx, []func(t *tx) error{fn})[0]
}

// writeMany hands fns to the writer goroutine as one request, so that they are committed
// in one group, and returns their outcomes in order. Each fn runs in a savepoint of its
// own: one that fails leaves no trace and the others still commit.
func (s *Store) writeMany(ctx context.Context, fns []func(t *tx) error) []error {
	req := &writeReq{ctx: ctx, fns: fns, errs: make([]error, len(fns)), done: make(chan struct{})}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		req.finish(ctx.Err())
		return req.errs
	case <-s.stopWrite:
		req.finish(ErrClosed)
		return req.errs
	}
	// Once taken, a request always completes: the writer does not stop mid-group.
	<-req.done
	return req.errs
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
		n := len(first.fns)
	fill:
		for n < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
				n += len(r.fns)
			default:
				break fill
			}
		}
		s.runGroup(group)
	}
}

// runGroup runs a group of write requests and reports each outcome after the commit.
// Each function runs inside a savepoint, so one that fails leaves no trace and the others
// still commit. If the group as a whole fails (the commit, a savepoint), each function is
// run again alone.
func (s *Store) runGroup(group []*writeReq) {
	live := group[:0]
	n := 0
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.finish(err)
			continue
		}
		live = append(live, r)
		n += len(r.fns)
	}
	if n == 0 {
		return
	}
	if n == 1 {
		r := live[0]
		s.writerTxs.Add(1)
		r.errs[0] = s.runTx(r.ctx, r.fns[0])
		close(r.done)
		return
	}
	if err := s.groupTx(live); err != nil {
		for _, r := range live {
			for i, fn := range r.fns {
				s.writerTxs.Add(1)
				r.errs[i] = s.runTx(r.ctx, fn)
			}
		}
	}
	for _, r := range live {
		close(r.done)
	}
}

// groupTx runs every function of every request in a savepoint of one transaction
// (sqldb.DB.InTx, so a busy database runs the group again), setting the requests'
// outcomes. Statements use a context of their own, not the requests': interrupting a
// statement could roll back the whole transaction, and everyone else's work with it.
func (s *Store) groupTx(group []*writeReq) error {
	ctx := context.Background()
	s.writerTxs.Add(1)
	err := s.db.InTx(ctx, func(sqlTx *sql.Tx) error {
		t := &tx{Tx: sqlTx, s: s, ctx: ctx}
		for _, r := range group {
			for i, fn := range r.fns {
				if _, err := t.exec(qSavepoint); err != nil {
					return fmt.Errorf("savepoint: %w", err)
				}
				if r.errs[i] = fn(t); r.errs[i] != nil {
					if _, err := t.exec(qRollbackToSavepoint); err != nil {
						return fmt.Errorf("rollback to savepoint: %w", err)
					}
				}
				if _, err := t.exec(qReleaseSavepoint); err != nil {
					return fmt.Errorf("release savepoint: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("group transaction: %w", err)
	}
	return nil
}
