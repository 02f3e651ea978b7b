package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Store reads and writes the chat service's tables. It is safe for concurrent use.
type Store struct {
	db *sqldb.DB
	// byPair is prepared once: every send looks its contact up, and parsing the statement
	// each time was a tenth of a send's CPU on SQLite.
	byPair *sql.Stmt
	// insertMsg is prepared once and bound to each batch's transaction.
	insertMsg *sql.Stmt
	// multiRow says a batch may be stored with one multi-row INSERT whose rows get
	// consecutive ids. Always on SQLite (one writer holds the database lock; LastInsertId
	// is the last row's id). On MySQL when innodb_autoinc_lock_mode is 0 or 1 (LastInsertId
	// is the first row's id); the "interleaved" mode 2 does not promise consecutive ids to
	// one statement. It saves a statement (a round trip on MySQL) per message.
	multiRow bool
	// stmts holds the statements of the writer's batches, prepared once per connection.
	// Their texts are bounded: IN lists padded to a power of two (sqldb.PaddedIn), INSERTs of at
	// most maxInsertRows rows.
	stmts sqldb.StmtCache
}

const insertMessageSQL = "INSERT INTO ChatMessage (ChatId, FromUserId, ToUserId, Content, CreatedAt, StatusId, ClientMessageId) VALUES (?, ?, ?, ?, ?, ?, ?)"

// New returns a store over db. Call Migrate before using it.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

// Migrate applies the chat service's migrations.
func (s *Store) Migrate(ctx context.Context) error {
	if err := sqldb.MigrateEmbedded(ctx, s.db, "chat", migrations); err != nil {
		return err
	}
	var err error
	if s.byPair, err = s.db.PrepareContext(ctx, contactByPairSQL); err != nil {
		return fmt.Errorf("prepare contact lookup: %w", err)
	}
	if s.insertMsg, err = s.db.PrepareContext(ctx, insertMessageSQL); err != nil {
		return fmt.Errorf("prepare message insert: %w", err)
	}
	s.multiRow = s.db.Dialect == sqldb.SQLite
	if s.db.Dialect == sqldb.MySQL {
		var mode, step int
		if err := s.db.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment").Scan(&mode, &step); err != nil {
			return fmt.Errorf("read auto-increment settings: %w", err)
		}
		// A step other than 1 (Galera, multi-primary setups) spaces the ids out.
		s.multiRow = mode <= 1 && step == 1
	}
	return nil
}

// MultiRowInserts reports whether batches are stored with one multi-row INSERT.
func (s *Store) MultiRowInserts() bool { return s.multiRow }

// insertMultiRow stores msgs (at most maxInsertRows) with one statement and sets their
// ids. It reports false (and stores nothing) when a ClientMessageId is taken, so the caller
// goes row by row.
func (s *Store) insertMultiRow(ctx context.Context, tx *sql.Tx, msgs []chat.Message) (bool, error) {
	var b strings.Builder
	b.WriteString("INSERT INTO ChatMessage (ChatId, FromUserId, ToUserId, Content, CreatedAt, StatusId, ClientMessageId) VALUES ")
	args := make([]any, 0, 7*len(msgs))
	for i, m := range msgs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, m.ChatID, m.FromUserID, m.ToUserID, m.Text, m.CreatedAt, int(chat.StatusSent), clientIDArg(m.ClientMessageID))
	}
	res, err := s.txExec(ctx, tx, b.String(), args...)
	if sqldb.IsDuplicate(err) {
		return false, nil // the failed statement stored nothing; the transaction goes on
	}
	if err != nil {
		return false, fmt.Errorf("insert %d messages: %w", len(msgs), err)
	}
	first, err := res.LastInsertId()
	if err != nil {
		return false, fmt.Errorf("insert %d messages: %w", len(msgs), err)
	}
	if s.db.Dialect == sqldb.SQLite {
		first -= int64(len(msgs) - 1) // SQLite reports the last row's id
	}
	for i := range msgs {
		msgs[i].ID = first + int64(i)
		msgs[i].Status = chat.StatusSent
	}
	return true, nil
}

// clientIDArg stores an absent ClientMessageId as NULL (the unique key ignores NULLs).
func clientIDArg(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// Close releases the prepared statements (not the database, which the caller owns).
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.byPair, s.insertMsg} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.stmts.Close()...)
	return errors.Join(errs...)
}

// Dialect returns the dialect of the underlying database.
func (s *Store) Dialect() sqldb.Dialect { return s.db.Dialect }

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, query, args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, query, args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, query, args...)
}

// inTx runs fn in a transaction under the policy every store shares (sqldb.DB.InTx): it
// runs again when it loses a lock race (a deadlock, a lock wait timeout, a busy SQLite
// database). On MySQL it uses READ COMMITTED, which takes no gap locks, so the single
// message writer never waits on a MESSAGES_READ range lock.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.InTx(ctx, fn)
}

// ---- contacts ----

const contactColumns = "Id, UserId1, UserId2, Status"

const contactByPairSQL = "SELECT " + contactColumns + " FROM Contact WHERE UserId1 = ? AND UserId2 = ?"

func scanContact(row interface{ Scan(...any) error }) (chat.Contact, error) {
	var c chat.Contact
	err := row.Scan(&c.ID, &c.UserID1, &c.UserID2, &c.Status)
	c.Accepted = c.Status == chat.ContactAccepted
	return c, err
}

// ContactByPair returns the contact row of two users in either order, accepted or removed.
func (s *Store) ContactByPair(ctx context.Context, a, b int64) (chat.Contact, bool, error) {
	return s.contactByPair(ctx, s.db, a, b)
}

func (s *Store) contactByPair(ctx context.Context, q querier, a, b int64) (chat.Contact, bool, error) {
	u1, u2 := chat.Pair(a, b)
	var row *sql.Row
	if q == querier(s.db) && s.byPair != nil {
		row = s.byPair.QueryRowContext(ctx, u1, u2)
	} else {
		row = s.queryRow(ctx, q, contactByPairSQL, u1, u2)
	}
	c, err := scanContact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Contact{}, false, nil
	}
	if err != nil {
		return chat.Contact{}, false, fmt.Errorf("select contact %d-%d: %w", u1, u2, err)
	}
	return c, true, nil
}

// ContactByID returns the contact whose chat is id, accepted or removed.
func (s *Store) ContactByID(ctx context.Context, id int64) (chat.Contact, bool, error) {
	c, err := scanContact(s.queryRow(ctx, s.db,
		"SELECT "+contactColumns+" FROM Contact WHERE Id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Contact{}, false, nil
	}
	if err != nil {
		return chat.Contact{}, false, fmt.Errorf("select contact %d: %w", id, err)
	}
	return c, true, nil
}

// AcceptContact makes a and b accepted contacts. It returns the chat id and whether the
// contact is new or restored from removed (false when it was already accepted).
func (s *Store) AcceptContact(ctx context.Context, a, b, now int64) (chatID int64, added bool, err error) {
	u1, u2 := chat.Pair(a, b)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		c, found, err := s.contactByPair(ctx, tx, u1, u2)
		if err != nil {
			return err
		}
		if found {
			chatID = c.ID
			if c.Accepted {
				added = false
				return nil
			}
			res, err := s.exec(ctx, tx, "UPDATE Contact SET Status = ? WHERE Id = ? AND Status <> ?",
				chat.ContactAccepted, c.ID, chat.ContactAccepted)
			if err != nil {
				return fmt.Errorf("restore contact %d: %w", c.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("restore contact %d: %w", c.ID, err)
			}
			added = n > 0
			return nil
		}
		res, err := s.exec(ctx, tx, "INSERT INTO Contact (UserId1, UserId2, Status, CreatedAt) VALUES (?, ?, ?, ?)",
			u1, u2, chat.ContactAccepted, now)
		if err != nil {
			return fmt.Errorf("insert contact %d-%d: %w", u1, u2, err)
		}
		chatID, err = res.LastInsertId()
		if err != nil {
			return fmt.Errorf("insert contact %d-%d: %w", u1, u2, err)
		}
		added = true
		return nil
	})
	if sqldb.IsDuplicate(err) {
		// A concurrent call created the pair first; it raised the notifications.
		c, found, err := s.ContactByPair(ctx, u1, u2)
		if err != nil {
			return 0, false, err
		}
		if !found {
			return 0, false, fmt.Errorf("contact %d-%d vanished after a duplicate insert", u1, u2)
		}
		return c.ID, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return chatID, added, nil
}

// RemoveContact marks the pair removed. It reports whether a row changed.
func (s *Store) RemoveContact(ctx context.Context, a, b int64) (bool, error) {
	u1, u2 := chat.Pair(a, b)
	res, err := s.exec(ctx, s.db, "UPDATE Contact SET Status = ? WHERE UserId1 = ? AND UserId2 = ? AND Status = ?",
		chat.ContactRemoved, u1, u2, chat.ContactAccepted)
	if err != nil {
		return false, fmt.Errorf("remove contact %d-%d: %w", u1, u2, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("remove contact %d-%d: %w", u1, u2, err)
	}
	return n > 0, nil
}

// ContactIDs returns the accepted contacts of each user, ascending, in one query.
func (s *Store) ContactIDs(ctx context.Context, users []int64) (map[int64][]int64, error) {
	out := make(map[int64][]int64, len(users))
	if len(users) == 0 {
		return out, nil
	}
	in := sqldb.Placeholders(len(users))
	args := append(sqldb.Int64Args(users), chat.ContactAccepted)
	args = append(args, sqldb.Int64Args(users)...)
	args = append(args, chat.ContactAccepted)
	// Two halves so each uses its own index (the pair key, and Contact_UserId2).
	rows, err := s.query(ctx, s.db,
		"SELECT UserId1, UserId2 FROM Contact WHERE UserId1 IN ("+in+") AND Status = ? "+
			"UNION ALL SELECT UserId2, UserId1 FROM Contact WHERE UserId2 IN ("+in+") AND Status = ?",
		args...)
	if err != nil {
		return nil, fmt.Errorf("select contact ids of %d users: %w", len(users), err)
	}
	defer rows.Close()
	for rows.Next() {
		var user, other int64
		if err := rows.Scan(&user, &other); err != nil {
			return nil, fmt.Errorf("scan contact ids: %w", err)
		}
		out[user] = append(out[user], other)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select contact ids of %d users: %w", len(users), err)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out, nil
}

// chatSummariesSQL is ChatSummaries' statement; its arguments are the user id five times
// but for the contact status in 3rd and 5th place.
const chatSummariesSQL = `
SELECT c.Id, c.Other, COALESCE(m.Content, ''), COALESCE(m.CreatedAt, 0),
       COALESCE((SELECT u.Unread FROM ChatUnread u WHERE u.ChatId = c.Id AND u.UserId = ?), 0) AS Unread
FROM (SELECT Id, UserId2 AS Other FROM Contact WHERE UserId1 = ? AND Status = ?
      UNION ALL
      SELECT Id, UserId1 AS Other FROM Contact WHERE UserId2 = ? AND Status = ?) c
LEFT JOIN ChatMessage m ON m.Id = (SELECT x.Id FROM ChatMessage x WHERE x.ChatId = c.Id ORDER BY x.Id DESC LIMIT 1)
ORDER BY 4 DESC, 1 DESC`

// ChatSummaries returns every accepted contact of user with its newest message and the
// user's unread count, newest message first (ties by chat id, descending), in one query:
// the newest message and the count are index lookups per chat inside the database
// (ChatMessage_Chat and ChatUnread's key), never a round trip per chat.
func (s *Store) ChatSummaries(ctx context.Context, user int64) ([]chat.ChatSummary, error) {
	rows, err := s.query(ctx, s.db, chatSummariesSQL, user, user, chat.ContactAccepted, user, chat.ContactAccepted)
	if err != nil {
		return nil, fmt.Errorf("select chats of %d: %w", user, err)
	}
	defer rows.Close()
	var out []chat.ChatSummary
	for rows.Next() {
		var c chat.ChatSummary
		if err := rows.Scan(&c.ChatID, &c.OtherUserID, &c.LastMessage, &c.LastMessageTs, &c.UnreadCount); err != nil {
			return nil, fmt.Errorf("scan chat: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select chats of %d: %w", user, err)
	}
	return out, nil
}

// ---- messages ----

const messageColumns = "Id, ChatId, FromUserId, ToUserId, Content, CreatedAt, StatusId, COALESCE(ClientMessageId, '')"

func scanMessage(row interface{ Scan(...any) error }) (chat.Message, error) {
	var m chat.Message
	err := row.Scan(&m.ID, &m.ChatID, &m.FromUserID, &m.ToUserID, &m.Text, &m.CreatedAt, &m.Status, &m.ClientMessageID)
	return m, err
}

// MessageByClientID returns the message a sender stored with an idempotency key.
func (s *Store) MessageByClientID(ctx context.Context, from int64, clientID string) (chat.Message, bool, error) {
	return s.messageByClientID(ctx, s.db, from, clientID)
}

func (s *Store) messageByClientID(ctx context.Context, q querier, from int64, clientID string) (chat.Message, bool, error) {
	m, err := scanMessage(s.queryRow(ctx, q,
		"SELECT "+messageColumns+" FROM ChatMessage WHERE FromUserId = ? AND ClientMessageId = ?", from, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, false, nil
	}
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("select message by client id: %w", err)
	}
	return m, true, nil
}

// Inserted is the outcome of inserting one message.
type Inserted struct {
	// Message is the stored row: the new one, or the original on a duplicate key.
	Message chat.Message
	// Duplicate is true when the sender's ClientMessageId was already taken.
	Duplicate bool
	// Refused is true when the chat's contact is not accepted (and the message is not a
	// repeat of a stored one): nothing was stored.
	Refused bool
}

// InsertMessages stores msgs in one transaction, in order, so their ids follow that order.
// It checks in the same transaction, with one query for the whole batch, that every chat's
// contact is accepted; a message in another chat is refused, unless its ClientMessageId
// names a stored message (a repeat, acknowledged even after the contact was removed).
// A message whose (FromUserId, ClientMessageId) is taken is not stored; its result carries
// the stored original instead. Either every result is valid or err is set.
func (s *Store) InsertMessages(ctx context.Context, msgs []chat.Message) ([]Inserted, error) {
	ins, _, err := s.WriteBatch(ctx, msgs, nil)
	return ins, err
}

// WriteBatch is one group commit: it stores msgs as InsertMessages does, counts them
// unread (ChatUnread) and applies receipts as MarkDeliveredBatch does, all in one
// transaction, in that order (see countUnreadTx for why the counts come before the
// receipts). Either every result is valid or err is set and nothing was written.
func (s *Store) WriteBatch(ctx context.Context, msgs []chat.Message, receipts []Receipt) ([]Inserted, [][]Delivered, error) {
	var (
		ins []Inserted
		dlv [][]Delivered
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ctx := s.db.WriteStatementContext(ctx)
		var err error
		if ins, err = s.insertMessagesTx(ctx, tx, msgs); err != nil {
			return err
		}
		if err = s.countUnreadTx(ctx, tx, ins); err != nil {
			return err
		}
		dlv, err = s.markDeliveredTx(ctx, tx, receipts)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return ins, dlv, nil
}

func (s *Store) insertMessagesTx(ctx context.Context, tx *sql.Tx, msgs []chat.Message) ([]Inserted, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	out := make([]Inserted, len(msgs))
	accepted, err := s.acceptedChats(ctx, tx, msgs)
	if err != nil {
		return nil, err
	}
	var (
		rows = make([]chat.Message, 0, len(msgs)) // to insert
		at   = make([]int, 0, len(msgs))          // their index in msgs
	)
	for i, m := range msgs {
		if accepted(m.ChatID) {
			rows = append(rows, m)
			at = append(at, i)
			continue
		}
		out[i] = Inserted{Refused: true}
		if m.ClientMessageID != "" {
			orig, found, err := s.messageByClientID(ctx, tx, m.FromUserID, m.ClientMessageID)
			if err != nil {
				return nil, err
			}
			if found {
				out[i] = Inserted{Message: orig, Duplicate: true}
			}
		}
	}
	// Multi-row statements while they succeed; from the first one that hits a taken
	// ClientMessageId (it stored nothing), row by row.
	done := 0
	for s.multiRow && len(rows)-done > 1 {
		n := min(maxInsertRows, len(rows)-done)
		ok, err := s.insertMultiRow(ctx, tx, rows[done:done+n])
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		for j := done; j < done+n; j++ {
			out[at[j]] = Inserted{Message: rows[j]}
		}
		done += n
	}
	if done == len(rows) {
		return out, nil
	}
	stmt := tx.StmtContext(ctx, s.insertMsg)
	defer stmt.Close()
	for j := done; j < len(rows); j++ {
		m := rows[j]
		m.Status = chat.StatusSent
		res, err := stmt.ExecContext(ctx, m.ChatID, m.FromUserID, m.ToUserID, m.Text, m.CreatedAt, int(m.Status), clientIDArg(m.ClientMessageID))
		if sqldb.IsDuplicate(err) && m.ClientMessageID != "" {
			orig, found, err := s.messageByClientID(ctx, tx, m.FromUserID, m.ClientMessageID)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, fmt.Errorf("message with a duplicate client id not found")
			}
			out[at[j]] = Inserted{Message: orig, Duplicate: true}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("insert message: %w", err)
		}
		if m.ID, err = res.LastInsertId(); err != nil {
			return nil, fmt.Errorf("insert message: %w", err)
		}
		out[at[j]] = Inserted{Message: m}
	}
	return out, nil
}

// acceptedChats tells which chats of msgs have an accepted contact, with one query per
// maxIn chats.
func (s *Store) acceptedChats(ctx context.Context, tx *sql.Tx, msgs []chat.Message) (func(int64) bool, error) {
	ids := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.ChatID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	found := ids[:0:0]
	err := chunks(ids, maxIn, func(ids []int64) error {
		in, args := sqldb.PaddedIn(ids, 2)
		rows, err := s.txQuery(ctx, tx, "SELECT Id FROM Contact WHERE Id IN ("+in+") AND Status = ?",
			append(args, chat.ContactAccepted)...)
		if err != nil {
			return fmt.Errorf("select accepted chats: %w", err)
		}
		found, err = scanIDs(rows, found)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(found)
	return func(id int64) bool {
		_, ok := slices.BinarySearch(found, id)
		return ok
	}, nil
}

// Messages returns one page of a chat's history, oldest first, and whether more messages
// exist beyond it in its direction. beforeID and afterID are exclusive bounds; at most one
// is set.
func (s *Store) Messages(ctx context.Context, chatID, beforeID, afterID int64, limit int) ([]chat.Message, bool, error) {
	var (
		q    string
		args []any
	)
	switch {
	case afterID > 0:
		q = "SELECT " + messageColumns + " FROM ChatMessage WHERE ChatId = ? AND Id > ? ORDER BY Id ASC LIMIT ?"
		args = []any{chatID, afterID, limit + 1}
	case beforeID > 0:
		q = "SELECT " + messageColumns + " FROM ChatMessage WHERE ChatId = ? AND Id < ? ORDER BY Id DESC LIMIT ?"
		args = []any{chatID, beforeID, limit + 1}
	default:
		q = "SELECT " + messageColumns + " FROM ChatMessage WHERE ChatId = ? ORDER BY Id DESC LIMIT ?"
		args = []any{chatID, limit + 1}
	}
	rows, err := s.query(ctx, s.db, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("select messages of chat %d: %w", chatID, err)
	}
	defer rows.Close()
	msgs := make([]chat.Message, 0, limit+1)
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, fmt.Errorf("scan message: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("select messages of chat %d: %w", chatID, err)
	}
	hasMore := len(msgs) > limit
	if hasMore {
		msgs = msgs[:limit]
	}
	if afterID <= 0 {
		slices.Reverse(msgs)
	}
	return msgs, hasMore, nil
}

// forUpdate locks the selected rows on MySQL; SQLite's write transactions are exclusive.
func (s *Store) forUpdate() string {
	if s.db.Dialect == sqldb.MySQL {
		return " FOR UPDATE"
	}
	return ""
}

// setStatus moves the (locked) messages ids to status, forward only, with one statement
// per maxIn ids.
func (s *Store) setStatus(ctx context.Context, tx *sql.Tx, ids []int64, status chat.Status) error {
	return chunks(ids, maxIn, func(ids []int64) error {
		in, args := sqldb.PaddedIn(ids, 2)
		args = append([]any{int(status)}, args...)
		if _, err := s.txExec(ctx, tx, "UPDATE ChatMessage SET StatusId = ? WHERE Id IN ("+in+") AND StatusId < ?",
			append(args, int(status))...); err != nil {
			return fmt.Errorf("update message status: %w", err)
		}
		return nil
	})
}

func scanIDs(rows *sql.Rows, ids []int64) ([]int64, error) {
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan id: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select ids: %w", err)
	}
	return ids, nil
}

// MarkNotified records that user got a new_message notification for chatID. It reports
// false when the mark was already there (one was raised and the chat is not read since).
func (s *Store) MarkNotified(ctx context.Context, chatID, user int64) (bool, error) {
	_, err := s.exec(ctx, s.db, "INSERT INTO ChatNotified (ChatId, UserId) VALUES (?, ?)", chatID, user)
	if sqldb.IsDuplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert notified mark: %w", err)
	}
	return true, nil
}

// ClearNotified removes user's new_message mark for chatID (used when a notification
// could not be raised, so a later message tries again).
func (s *Store) ClearNotified(ctx context.Context, chatID, user int64) error {
	if _, err := s.exec(ctx, s.db, "DELETE FROM ChatNotified WHERE ChatId = ? AND UserId = ?", chatID, user); err != nil {
		return fmt.Errorf("clear notified mark: %w", err)
	}
	return nil
}
