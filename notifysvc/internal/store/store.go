// Package store keeps notifications in the Notification table, on SQLite or MySQL.
//
// Every statement is served by an index (see the migrations): pages and the per-user
// retention by (UserId, Id), unread pages and the unread count by (UserId, IsRead, Id), and
// retention by age by (CreatedAt). Reads run without a transaction: on SQLite a transaction
// takes the write lock at BEGIN (sqldb opens it with _txlock=immediate), and a page and
// its unread count need not be one snapshot. A *Store is safe for concurrent use.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/shared/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Store is the notification table.
type Store struct {
	db *sqldb.DB
}

// New migrates the schema of db (goose, versions kept in goose_notify) and returns a store
// over it.
func New(ctx context.Context, db *sqldb.DB) (*Store, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("notify migrations: %w", err)
	}
	if err := sqldb.Migrate(ctx, db, "notify", sub); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

const columns = "Id, UserId, Type, Title, Message, Payload, CreatedAt, IsRead"

// Create stores n (its ID and IsRead are ignored) and returns it with its id.
func (s *Store) Create(ctx context.Context, n notify.Notification) (notify.Notification, error) {
	if n.Payload == "" {
		n.Payload = notify.EmptyPayload
	}
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO Notification (UserId, Type, Title, Message, Payload, CreatedAt, IsRead) VALUES (?, ?, ?, ?, ?, ?, 0)",
		n.UserID, n.Type, n.Title, n.Message, n.Payload, n.CreatedAt)
	if err != nil {
		return notify.Notification{}, fmt.Errorf("insert notification: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return notify.Notification{}, fmt.Errorf("id of new notification: %w", err)
	}
	n.ID = id
	n.IsRead = false
	return n, nil
}

// List returns one page of q.UserID's notifications, newest (highest id) first.
func (s *Store) List(ctx context.Context, q notify.ListQuery) ([]notify.Notification, error) {
	var b strings.Builder
	b.WriteString("SELECT " + columns + " FROM Notification WHERE UserId = ?")
	args := []any{q.UserID}
	if q.UnreadOnly {
		b.WriteString(" AND IsRead = 0")
	}
	if q.BeforeID > 0 {
		b.WriteString(" AND Id < ?")
		args = append(args, q.BeforeID)
	}
	b.WriteString(" ORDER BY Id DESC LIMIT ?")
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	page := make([]notify.Notification, 0, q.Limit)
	for rows.Next() {
		var n notify.Notification
		if err := rows.Scan(&n.ID, &n.UserID, &n.Type, &n.Title, &n.Message, &n.Payload, &n.CreatedAt, &n.IsRead); err != nil {
			return nil, fmt.Errorf("scan notification: %w", err)
		}
		page = append(page, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return page, nil
}

// UnreadCount returns how many of userID's notifications are unread.
func (s *Store) UnreadCount(ctx context.Context, userID int64) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM Notification WHERE UserId = ? AND IsRead = 0", userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unread notifications: %w", err)
	}
	return n, nil
}

// MarkRead marks notification id of userID read and returns 1 if it changed, 0 if it was
// already read. A notification that does not exist or is someone else's is
// notify.ErrNotFound, and nothing changes.
//
// The IsRead = 0 condition makes the affected-row count mean "changed" on both databases:
// MySQL reports matched-but-unchanged rows as unaffected, SQLite as affected.
func (s *Store) MarkRead(ctx context.Context, userID, id int64) (int64, error) {
	res, err := s.db.ExecContext(ctx,
		"UPDATE Notification SET IsRead = 1 WHERE Id = ? AND UserId = ? AND IsRead = 0", id, userID)
	if err != nil {
		return 0, fmt.Errorf("mark notification read: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mark notification read: %w", err)
	}
	if n > 0 {
		return n, nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, "SELECT 1 FROM Notification WHERE Id = ? AND UserId = ?", id, userID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("notification %d of user %d: %w", id, userID, notify.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("look up notification: %w", err)
	}
	return 0, nil
}

// MarkAllRead marks every unread notification of userID read and returns how many changed.
func (s *Store) MarkAllRead(ctx context.Context, userID int64) (int64, error) {
	res, err := s.db.ExecContext(ctx,
		"UPDATE Notification SET IsRead = 1 WHERE UserId = ? AND IsRead = 0", userID)
	if err != nil {
		return 0, fmt.Errorf("mark all notifications read: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mark all notifications read: %w", err)
	}
	return n, nil
}

// DeleteOlderThan deletes at most batch notifications created before cutoff (Unix ms),
// oldest first, and returns how many it deleted. Callers loop while it returns batch, so
// no statement holds the write lock for long.
func (s *Store) DeleteOlderThan(ctx context.Context, cutoff int64, batch int) (int64, error) {
	var q string
	if s.db.Dialect == sqldb.MySQL {
		q = "DELETE FROM Notification WHERE CreatedAt < ? ORDER BY CreatedAt LIMIT ?"
	} else {
		// SQLite is built without DELETE ... LIMIT; select the batch's ids instead.
		q = "DELETE FROM Notification WHERE Id IN (SELECT Id FROM Notification WHERE CreatedAt < ? ORDER BY CreatedAt LIMIT ?)"
	}
	return s.exec(ctx, "delete old notifications", q, cutoff, batch)
}

// UsersOver returns the users holding more than keep notifications. It reads the whole
// (UserId, Id) index, so the pruner calls it rarely (at start) and otherwise checks only
// the users that received notifications since its last run.
func (s *Store) UsersOver(ctx context.Context, keep int) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT UserId FROM Notification GROUP BY UserId HAVING COUNT(*) > ?", keep)
	if err != nil {
		return nil, fmt.Errorf("find users over the retention count: %w", err)
	}
	defer rows.Close()
	var users []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("scan user id: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find users over the retention count: %w", err)
	}
	return users, nil
}

// DeleteExcess deletes at most batch of userID's notifications beyond the newest keep,
// oldest first, and returns how many it deleted.
func (s *Store) DeleteExcess(ctx context.Context, userID int64, keep, batch int) (int64, error) {
	// The newest notification that must go: the one just past the newest keep.
	var cutoff int64
	err := s.db.QueryRowContext(ctx,
		"SELECT Id FROM Notification WHERE UserId = ? ORDER BY Id DESC LIMIT 1 OFFSET ?", userID, keep).Scan(&cutoff)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("find retention cutoff of user %d: %w", userID, err)
	}
	var q string
	if s.db.Dialect == sqldb.MySQL {
		q = "DELETE FROM Notification WHERE UserId = ? AND Id <= ? ORDER BY Id LIMIT ?"
	} else {
		q = "DELETE FROM Notification WHERE Id IN (SELECT Id FROM Notification WHERE UserId = ? AND Id <= ? ORDER BY Id LIMIT ?)"
	}
	return s.exec(ctx, "delete excess notifications", q, userID, cutoff, batch)
}

func (s *Store) exec(ctx context.Context, what, q string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}
