// Package store keeps notifications in the Notification table, on SQLite or MySQL.
//
// Every statement is served by an index (see the migrations): pages and the per-user
// retention by (UserId, Id), unread pages by (UserId, IsRead, Id), retention by age by
// (CreatedAt). The unread count is a counter row per user (NotificationUnread) that every
// write changes in the same transaction as the notifications, so it costs one primary-key
// read however many notifications a user has.
//
// Reads run without a transaction: on SQLite a transaction takes the write lock at BEGIN
// (sqldb opens it with _txlock=immediate), and a page and its unread count need not be one
// snapshot. A *Store is safe for concurrent use.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/shared/sqldb"
)

// Store is the notification table.
type Store struct {
	db *sqldb.DB
}

var _ notify.Store = (*Store)(nil)

// New returns a store over db, whose schema Migrate has applied.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

const columns = "Id, UserId, Type, Title, Message, Payload, CreatedAt, IsRead"

// Create stores n (its ID and IsRead are ignored) and returns it with its id.
func (s *Store) Create(ctx context.Context, n notify.Notification) (notify.Notification, error) {
	if n.Payload == "" {
		n.Payload = notify.EmptyPayload
	}
	upsert := "INSERT INTO NotificationUnread (UserId, Unread) VALUES (?, 1) ON CONFLICT (UserId) DO UPDATE SET Unread = Unread + 1"
	if s.db.Dialect == sqldb.MySQL {
		upsert = "INSERT INTO NotificationUnread (UserId, Unread) VALUES (?, 1) ON DUPLICATE KEY UPDATE Unread = Unread + 1"
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"INSERT INTO Notification (UserId, Type, Title, Message, Payload, CreatedAt, IsRead) VALUES (?, ?, ?, ?, ?, ?, 0)",
			n.UserID, n.Type, n.Title, n.Message, n.Payload, n.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert notification: %w", err)
		}
		if n.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("id of new notification: %w", err)
		}
		if _, err := tx.ExecContext(ctx, upsert, n.UserID); err != nil {
			return fmt.Errorf("count unread notification: %w", err)
		}
		return nil
	})
	if err != nil {
		return notify.Notification{}, err
	}
	n.IsRead = false
	return n, nil
}

// List returns one page of q.UserID's notifications, newest (highest id) first.
func (s *Store) List(ctx context.Context, q notify.ListQuery) ([]notify.Notification, error) {
	query, args := listQuery(s.db.Dialect, q)
	rows, err := s.db.QueryContext(ctx, query, args...)
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

// UnreadCount returns how many of userID's notifications are unread, from the counter
// row every write keeps in step.
func (s *Store) UnreadCount(ctx context.Context, userID int64) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT Unread FROM NotificationUnread WHERE UserId = ?", userID).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read unread count: %w", err)
	}
	// Never negative, even if a row was ever changed behind the store's back.
	return max(n, 0), nil
}

// MarkRead marks notification id of userID read and returns 1 if it changed, 0 if it was
// already read. A notification that does not exist or is someone else's is
// notify.ErrNotFound, and nothing changes.
//
// The IsRead = 0 condition makes the affected-row count mean "changed" on both databases:
// MySQL reports matched-but-unchanged rows as unaffected, SQLite as affected.
func (s *Store) MarkRead(ctx context.Context, userID, id int64) (int64, error) {
	var changed int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		changed, err = execCount(ctx, tx, "mark notification read",
			"UPDATE Notification SET IsRead = 1 WHERE Id = ? AND UserId = ? AND IsRead = 0", id, userID)
		if err != nil {
			return err
		}
		if changed > 0 {
			return decrementUnread(ctx, tx, userID, changed)
		}
		var one int
		err = tx.QueryRowContext(ctx, "SELECT 1 FROM Notification WHERE Id = ? AND UserId = ?", id, userID).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("notification %d of user %d: %w", id, userID, notify.ErrNotFound)
		case err != nil:
			return fmt.Errorf("look up notification: %w", err)
		}
		return nil
	})
	return changed, err
}

// MarkAllRead marks every unread notification of userID read and returns how many changed.
func (s *Store) MarkAllRead(ctx context.Context, userID int64) (int64, error) {
	var changed int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		changed, err = execCount(ctx, tx, "mark all notifications read",
			"UPDATE Notification SET IsRead = 1 WHERE UserId = ? AND IsRead = 0", userID)
		if err != nil || changed == 0 {
			return err
		}
		return decrementUnread(ctx, tx, userID, changed)
	})
	return changed, err
}

// DeleteOlderThan deletes at most batch notifications created before cutoff (Unix ms),
// oldest first, and returns how many it deleted. Callers loop while it returns batch, so
// no transaction holds the write lock for long.
func (s *Store) DeleteOlderThan(ctx context.Context, cutoff int64, batch int) (int64, error) {
	return s.deleteBatch(ctx, "delete old notifications",
		"SELECT Id, UserId, IsRead FROM Notification WHERE CreatedAt < ? ORDER BY CreatedAt, Id LIMIT ?", cutoff, batch)
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
	users, err := sqldb.Int64s(rows)
	if err != nil {
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
	return s.deleteBatch(ctx, "delete excess notifications",
		"SELECT Id, UserId, IsRead FROM Notification WHERE UserId = ? AND Id <= ? ORDER BY Id LIMIT ?", userID, cutoff, batch)
}

// deleteBatch deletes the rows (Id, UserId, IsRead) that query selects, and takes the
// unread ones off their owners' counts, in one transaction. On MySQL the rows are locked as
// they are read (FOR UPDATE), so a concurrent MarkRead cannot make the counts drift; SQLite
// transactions hold the write lock from BEGIN.
func (s *Store) deleteBatch(ctx context.Context, what, query string, args ...any) (int64, error) {
	if s.db.Dialect == sqldb.MySQL {
		query += " FOR UPDATE"
	}
	var deleted int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids, unread, err := selectBatch(ctx, tx, what, query, args...)
		if err != nil || len(ids) == 0 {
			return err
		}
		if deleted, err = execCount(ctx, tx, what,
			"DELETE FROM Notification WHERE Id IN ("+sqldb.Placeholders(len(ids))+")", sqldb.Int64Args(ids)...); err != nil {
			return err
		}
		// In user order, so concurrent pruners lock counter rows in the same order.
		users := make([]int64, 0, len(unread))
		for u := range unread {
			users = append(users, u)
		}
		slices.Sort(users)
		for _, u := range users {
			if err := decrementUnread(ctx, tx, u, unread[u]); err != nil {
				return err
			}
		}
		return nil
	})
	return deleted, err
}

// selectBatch returns the ids query selects and, per owner, how many of them are unread.
func selectBatch(ctx context.Context, tx *sql.Tx, what, query string, args ...any) ([]int64, map[int64]int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var ids []int64
	unread := map[int64]int64{}
	for rows.Next() {
		var id, user int64
		var isRead bool
		if err := rows.Scan(&id, &user, &isRead); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, err)
		}
		ids = append(ids, id)
		if !isRead {
			unread[user]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return ids, unread, nil
}

func decrementUnread(ctx context.Context, tx *sql.Tx, userID, n int64) error {
	if _, err := tx.ExecContext(ctx,
		"UPDATE NotificationUnread SET Unread = Unread - ? WHERE UserId = ?", n, userID); err != nil {
		return fmt.Errorf("update unread count: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction under the policy every store shares (sqldb.DB.InTx:
// READ COMMITTED on MySQL, run again after a deadlock, a lock wait timeout or a busy
// SQLite database).
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.InTx(ctx, fn)
}

func execCount(ctx context.Context, tx *sql.Tx, what, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

// listQuery is the statement of one page; each variant is served by one index (see
// TestQueryPlans).
func listQuery(dialect sqldb.Dialect, q notify.ListQuery) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT " + columns + " FROM Notification")
	if dialect == sqldb.MySQL {
		// MariaDB picks a ref scan of (UserId) and filters Id < ? row by row (measured
		// ~11 ms at 10,000 rows instead of ~0.8 ms); name the index that serves the range.
		if q.UnreadOnly {
			b.WriteString(" FORCE INDEX (idx_notification_user_unread)")
		} else {
			b.WriteString(" FORCE INDEX (idx_notification_user_id)")
		}
	}
	b.WriteString(" WHERE UserId = ?")
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
	return b.String(), args
}
