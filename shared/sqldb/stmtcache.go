package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// StmtCache holds statements prepared once and reused (database/sql prepares a *sql.Stmt
// lazily on each connection it runs on and keeps it there). Parsing a statement costs
// SQLite a good part of a cheap query's CPU, and an unprepared statement with arguments
// costs the MySQL driver a second round trip (prepare, then execute). Callers keep the
// set of texts bounded (fixed texts, or a few shapes per statement): the cache never
// forgets one. The zero value is ready; it is safe for concurrent use.
type StmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// Get returns the statement for query on db, preparing it on first use.
func (c *StmtCache) Get(ctx context.Context, db *DB, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", FirstWords(query), err)
	}
	if c.m == nil {
		c.m = make(map[string]*sql.Stmt)
	}
	c.m[query] = st
	return st, nil
}

// Close closes every cached statement and returns their errors.
func (c *StmtCache) Close() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		if err := st.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(c.m, q)
	}
	return errs
}

// FirstWords names a statement in an error without its (long) WHERE clause or IN list.
func FirstWords(q string) string {
	if i := strings.Index(q, " WHERE"); i > 0 {
		return q[:i]
	}
	if len(q) > 60 {
		return q[:60]
	}
	return q
}
