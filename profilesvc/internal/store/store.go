// Package store keeps the profile service's tables (User, Session, Country, Education,
// WorkExperience, Certification, Skill, Language, Project) in SQLite or MySQL. The SQL is
// the same on both (table names in backticks, which SQLite accepts too) except for row
// locks, which only MySQL takes (SQLite's write transactions already exclude each other).
// The schema comes from the goose migrations embedded below, one folder per dialect.
//
// A *Store is safe for concurrent use. Every method that writes runs in one transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charla/charla/profilesvc/internal/profile"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/sqldb"
)

// Store implements profile.Store.
type Store struct {
	db *sqldb.DB
	// forUpdate is appended to SELECTs that lock rows for the rest of a transaction.
	forUpdate string
	// stmts holds the statements of the hot paths (ResolveSession and ResolveSessions,
	// once per handshake or batch of them), prepared once: parsing was a tenth of a
	// handshake's CPU on SQLite.
	stmts sqldb.StmtCache
}

var _ profile.Store = (*Store)(nil)

// New returns a store over an already migrated database.
func New(db *sqldb.DB) *Store {
	s := &Store{db: db}
	if db.Dialect == sqldb.MySQL {
		s.forUpdate = " FOR UPDATE"
	}
	return s
}

// Close closes the store's prepared statements. The database stays open: its owner
// closes it.
func (s *Store) Close() error { return errors.Join(s.stmts.Close()...) }

// nullCountry stores country 0 as NULL, so the foreign key holds.
func nullCountry(id int32) any {
	if id == 0 {
		return nil
	}
	return id
}

const userColumns = "u.Id, u.UserName, u.FirstName, u.LastName, u.Email, u.Phone, u.Picture"

func scanUser(row interface{ Scan(...any) error }) (*profilev1.User, error) {
	u := new(profilev1.User)
	err := row.Scan(&u.Id, &u.UserName, &u.FirstName, &u.LastName, &u.Email, &u.Phone, &u.Picture)
	return u, err
}

// CreateUser implements profile.Store.
func (s *Store) CreateUser(ctx context.Context, nu profile.NewUser, now int64) (*profilev1.User, error) {
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO `User` (UserName, FirstName, LastName, Email, EmailLower, Phone, Picture, Summary, CountryId, CreatedAt)"+
			" VALUES (?, ?, ?, ?, ?, ?, '', '', NULL, ?)",
		nu.UserName, nu.FirstName, nu.LastName, nu.Email, strings.ToLower(nu.Email), nu.Phone, now)
	if err != nil {
		if sqldb.IsDuplicate(err) {
			return nil, s.whichDuplicate(ctx, nu)
		}
		return nil, fmt.Errorf("insert user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("id of new user: %w", err)
	}
	return &profilev1.User{Id: id, UserName: nu.UserName, FirstName: nu.FirstName, LastName: nu.LastName, Email: nu.Email, Phone: nu.Phone}, nil
}

// whichDuplicate names the unique field a failed insert collided on; the drivers' messages
// differ, so it asks the table instead of parsing them.
func (s *Store) whichDuplicate(ctx context.Context, nu profile.NewUser) error {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM `User` WHERE UserName = ?", nu.UserName).Scan(&n)
	if err != nil {
		return fmt.Errorf("find duplicate user: %w", err)
	}
	if n > 0 {
		return profile.Errorf(profile.CodeConflict, "userName: %q is taken", nu.UserName)
	}
	return profile.Errorf(profile.CodeConflict, "email: already registered")
}

// CreateSession implements profile.Store.
func (s *Store) CreateSession(ctx context.Context, userID int64, tokenHash string, expiresAt, now int64) (int64, error) {
	// INSERT ... SELECT inserts nothing for an unknown user: one statement, no race.
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO `Session` (Tk, UserId, ExpiresAt, RevokedAt, CreatedAt) SELECT ?, Id, ?, NULL, ? FROM `User` WHERE Id = ?",
		tokenHash, expiresAt, now, userID)
	if err != nil {
		return 0, fmt.Errorf("insert session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, fmt.Errorf("insert session: %w", err)
	} else if n == 0 {
		return 0, profile.Errorf(profile.CodeNotFound, "userId: no user %d", userID)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("id of new session: %w", err)
	}
	return id, nil
}

// RevokeSession implements profile.Store.
func (s *Store) RevokeSession(ctx context.Context, tokenHash string, now int64) (*profile.EndedSession, error) {
	var ended *profile.EndedSession
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			id, userID, expiresAt int64
			revokedAt             sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, "SELECT Id, UserId, ExpiresAt, RevokedAt FROM `Session` WHERE Tk = ?"+s.forUpdate, tokenHash).
			Scan(&id, &userID, &expiresAt, &revokedAt)
		if errors.Is(err, sql.ErrNoRows) || err == nil && revokedAt.Valid {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find session: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE `Session` SET RevokedAt = ? WHERE Id = ?", now, id); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		if expiresAt > now {
			ended = &profile.EndedSession{ID: id, UserID: userID}
		}
		return nil
	})
	return ended, err
}

// resolveSessionSQL is ResolveSession's query (cached in Store.stmts).
const resolveSessionSQL = "SELECT s.Id, s.ExpiresAt, " + userColumns + " FROM `Session` s JOIN `User` u ON u.Id = s.UserId" +
	" WHERE s.Tk = ? AND s.RevokedAt IS NULL AND s.ExpiresAt > ?"

// ResolveSession implements profile.Store.
func (s *Store) ResolveSession(ctx context.Context, tokenHash string, now int64) (*profile.Session, error) {
	st, err := s.stmts.Get(ctx, s.db, resolveSessionSQL)
	if err != nil {
		return nil, fmt.Errorf("resolve session: %w", err)
	}
	row := st.QueryRowContext(ctx, tokenHash, now)
	var (
		ses profile.Session
		u   profilev1.User
	)
	err = row.Scan(&ses.ID, &ses.ExpiresAt, &u.Id, &u.UserName, &u.FirstName, &u.LastName, &u.Email, &u.Phone, &u.Picture)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, profile.Errorf(profile.CodeUnauthenticated, "token: unknown, revoked or expired session")
	}
	if err != nil {
		return nil, fmt.Errorf("resolve session: %w", err)
	}
	ses.User = &u
	return &ses, nil
}

// maxResolveSessions bounds the hashes of one ResolveSessions query, as the server bounds
// the tokens of a call; with the padding of sqldb.PaddedIn, nine statements serve every size.
const maxResolveSessions = 256

// resolveSessionsSQL is ResolveSessions' query for the IN list in, whose length is a
// power of two (sqldb.PaddedIn), so a few cached statements serve every batch.
func resolveSessionsSQL(in string) string {
	return "SELECT s.Tk, s.Id, s.ExpiresAt, " + userColumns + " FROM `Session` s JOIN `User` u ON u.Id = s.UserId" +
		" WHERE s.Tk IN (" + in + ") AND s.RevokedAt IS NULL AND s.ExpiresAt > ?"
}

// ResolveSessions implements profile.Store: ResolveSession's query over an IN list of the
// distinct hashes, prepared once per list size.
func (s *Store) ResolveSessions(ctx context.Context, tokenHashes []string, now int64) (map[string]*profile.Session, error) {
	hashes := slices.Clone(tokenHashes)
	slices.Sort(hashes)
	hashes = slices.Compact(hashes)
	found := make(map[string]*profile.Session, len(hashes))
	if len(hashes) == 0 {
		return found, nil
	}
	if len(hashes) > maxResolveSessions {
		return nil, fmt.Errorf("resolve sessions: %d token hashes, at most %d", len(hashes), maxResolveSessions)
	}
	in, args := sqldb.PaddedIn(hashes, 1) // and now, appended below
	st, err := s.stmts.Get(ctx, s.db, resolveSessionsSQL(in))
	if err != nil {
		return nil, fmt.Errorf("resolve sessions: %w", err)
	}
	rows, err := st.QueryContext(ctx, append(args, now)...)
	if err != nil {
		return nil, fmt.Errorf("resolve sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			tk  string
			ses profile.Session
			u   profilev1.User
		)
		if err := rows.Scan(&tk, &ses.ID, &ses.ExpiresAt, &u.Id, &u.UserName, &u.FirstName, &u.LastName, &u.Email, &u.Phone, &u.Picture); err != nil {
			return nil, fmt.Errorf("resolve sessions: %w", err)
		}
		ses.User = &u
		found[tk] = &ses
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("resolve sessions: %w", err)
	}
	return found, nil
}

// CheckSessions implements profile.Store.
func (s *Store) CheckSessions(ctx context.Context, ids []int64, now int64) (map[int64]profilev1.SessionState, error) {
	states := make(map[int64]profilev1.SessionState, len(ids))
	for _, id := range ids {
		states[id] = profilev1.SessionState_SESSION_STATE_REVOKED
	}
	if len(ids) == 0 {
		return states, nil
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT Id, ExpiresAt, RevokedAt FROM `Session` WHERE Id IN ("+sqldb.Placeholders(len(ids))+")", sqldb.Int64Args(ids)...)
	if err != nil {
		return nil, fmt.Errorf("check sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, expiresAt int64
			revokedAt     sql.NullInt64
		)
		if err := rows.Scan(&id, &expiresAt, &revokedAt); err != nil {
			return nil, fmt.Errorf("check sessions: %w", err)
		}
		switch {
		case revokedAt.Valid:
			states[id] = profilev1.SessionState_SESSION_STATE_REVOKED
		case expiresAt <= now:
			states[id] = profilev1.SessionState_SESSION_STATE_EXPIRED
		default:
			states[id] = profilev1.SessionState_SESSION_STATE_ACTIVE
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check sessions: %w", err)
	}
	return states, nil
}

// ListCountries implements profile.Store.
func (s *Store) ListCountries(ctx context.Context) ([]*profilev1.Country, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT Id, Name FROM `Country` ORDER BY Id")
	if err != nil {
		return nil, fmt.Errorf("list countries: %w", err)
	}
	defer rows.Close()
	var out []*profilev1.Country
	for rows.Next() {
		c := new(profilev1.Country)
		if err := rows.Scan(&c.Id, &c.Name); err != nil {
			return nil, fmt.Errorf("list countries: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list countries: %w", err)
	}
	return out, nil
}

// UsersByID implements profile.Store.
func (s *Store) UsersByID(ctx context.Context, ids []int64) ([]*profilev1.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.users(ctx, "u.Id IN ("+sqldb.Placeholders(len(ids))+")", sqldb.Int64Args(ids))
}

// UsersByName implements profile.Store.
func (s *Store) UsersByName(ctx context.Context, names []string) ([]*profilev1.User, error) {
	if len(names) == 0 {
		return nil, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	return s.users(ctx, "u.UserName IN ("+sqldb.Placeholders(len(names))+")", args)
}

// ListUsers implements profile.Store. The primary key serves the range and the order.
func (s *Store) ListUsers(ctx context.Context, afterID int64, limit int) ([]*profilev1.User, error) {
	return s.users(ctx, "u.Id > ? ORDER BY u.Id LIMIT ?", []any{afterID, limit})
}

func (s *Store) users(ctx context.Context, where string, args []any) ([]*profilev1.User, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+userColumns+" FROM `User` u WHERE "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("get users: %w", err)
	}
	defer rows.Close()
	var out []*profilev1.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("get users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get users: %w", err)
	}
	return out, nil
}

// sortedUnique returns the ids sorted without repeats.
func sortedUnique(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
