package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/sqldb"
)

// Unread messages are counted in ChatUnread, one row per chat and recipient (migrations
// sqlite/00003 and mysql/00002): Unread is how many messages to UserId in ChatId are not
// read yet, MinId a bound below which none of them lies. The writer adds each batch's new
// messages in the batch's transaction (countUnreadTx); MarkRead subtracts exactly the rows
// it moved to read. Both change the row in the transaction that changes the messages, so
// the count is always the number of unread rows, on every database.
//
// MinId is what keeps MarkRead from scanning the whole chat: it reads ChatMessage_Chat from
// MinId on. After reading up to an id it moves MinId past it. On MySQL a message can take an
// id below that bound and commit after the MarkRead (ids are taken at INSERT; commits come
// in any order); the writer counts it after the INSERT with MinId = LEAST(MinId, its id),
// and the ChatUnread row lock orders the two, so such a message lowers the bound again and
// the next MarkRead finds it.

// countUnreadTx adds the messages ins stored (not the repeats, not the refused) to their
// recipients' unread counts, with one upsert per maxUnreadRows (chat, recipient) pairs. The
// pairs go in key order, so two writers (two chatsvc processes on one MySQL) lock the rows
// in the same order. It runs before the batch's receipts lock any message, as MarkRead
// locks its ChatUnread row before the messages it reads.
func (s *Store) countUnreadTx(ctx context.Context, tx *sql.Tx, ins []Inserted) error {
	type pair struct{ chat, user, n, minID int64 }
	var pairs []pair
	for _, in := range ins {
		if in.Duplicate || in.Refused {
			continue
		}
		m := in.Message
		i, found := slices.BinarySearchFunc(pairs, m, func(p pair, m chat.Message) int {
			return cmp.Or(cmp.Compare(p.chat, m.ChatID), cmp.Compare(p.user, m.ToUserID))
		})
		if !found {
			pairs = slices.Insert(pairs, i, pair{chat: m.ChatID, user: m.ToUserID, minID: m.ID})
		}
		pairs[i].n++
		pairs[i].minID = min(pairs[i].minID, m.ID)
	}
	for len(pairs) > 0 {
		n := min(maxUnreadRows, len(pairs))
		args := make([]any, 0, 4*n)
		for _, p := range pairs[:n] {
			args = append(args, p.chat, p.user, p.n, p.minID)
		}
		if _, err := s.txExec(ctx, tx, s.countUnreadSQL(n), args...); err != nil {
			return fmt.Errorf("count %d chats' unread messages: %w", n, err)
		}
		pairs = pairs[n:]
	}
	return nil
}

// maxUnreadRows bounds the rows of one ChatUnread upsert (and so the statement texts the
// cache holds).
const maxUnreadRows = 32

// countUnreadSQL is the upsert of rows (chat, user, unread, min id) into ChatUnread that
// adds to the counts and lowers the bounds of the rows already there.
func (s *Store) countUnreadSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ChatUnread (ChatId, UserId, Unread, MinId) VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
	}
	if s.db.Dialect == sqldb.MySQL {
		b.WriteString(" ON DUPLICATE KEY UPDATE Unread = Unread + VALUES(Unread), MinId = LEAST(MinId, VALUES(MinId))")
	} else {
		b.WriteString(" ON CONFLICT (ChatId, UserId) DO UPDATE SET Unread = Unread + excluded.Unread, MinId = MIN(MinId, excluded.MinId)")
	}
	return b.String()
}

// MarkRead marks the messages to reader in chatID with id <= upTo (0: all) as read and
// returns the ids it changed, ascending. It also clears the chat's new_message
// notification mark for reader.
//
// In one transaction: read (on MySQL lock) reader's ChatUnread row, select the unread ids
// from its MinId on, update exactly those and take them off the count. The row lock
// serializes MarkReads of one reader and chat, so the ids selected are the rows changed and
// a repeat returns none. The select takes no lock: a message of this chat that is not
// committed yet is not read now (the writer counts it after this commits, lowering MinId
// to its id if need be; see above).
func (s *Store) MarkRead(ctx context.Context, reader, chatID, upTo int64) ([]int64, error) {
	var ids []int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		var unread, minID int64
		err := s.queryRow(ctx, tx, "SELECT Unread, MinId FROM ChatUnread WHERE ChatId = ? AND UserId = ?"+s.forUpdate(),
			chatID, reader).Scan(&unread, &minID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("select unread count: %w", err)
		}
		if unread > 0 && (upTo <= 0 || upTo >= minID) {
			if ids, err = s.readUnreadTx(ctx, tx, reader, chatID, minID, upTo, unread, ids); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, "DELETE FROM ChatNotified WHERE ChatId = ? AND UserId = ?", chatID, reader); err != nil {
			return fmt.Errorf("clear notified mark: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// readUnreadTx is MarkRead's work once the ChatUnread row says there is something to read
// at or above minID: it marks the unread messages in [minID, upTo] (upTo 0: no upper
// bound) read, appends their ids to ids and updates the row.
func (s *Store) readUnreadTx(ctx context.Context, tx *sql.Tx, reader, chatID, minID, upTo, unread int64, ids []int64) ([]int64, error) {
	q, args := unreadIDsSQL, []any{chatID, minID, reader}
	if upTo > 0 {
		q, args = unreadIDsUpToSQL, append(args, upTo)
	}
	rows, err := s.query(ctx, tx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("select unread messages: %w", err)
	}
	if ids, err = scanIDs(rows, ids); err != nil {
		return nil, err
	}
	slices.Sort(ids) // ChatMessage_Chat gives them in order; the planner does not promise it
	if err := s.setStatus(ctx, tx, ids, chat.StatusRead); err != nil {
		return nil, err
	}
	// Every unread message in [minID, upTo] that is committed was just read: the bound moves
	// past upTo (past the last one read when there is no upper bound).
	next := minID
	switch {
	case upTo > 0:
		next = max(minID, upTo+1)
	case len(ids) > 0:
		next = max(minID, ids[len(ids)-1]+1)
	}
	// The row is locked (SQLite: the transaction is exclusive), so the count is set, not
	// subtracted in SQL. Reading everything leaves none unread whatever the count said.
	left := unread - int64(len(ids))
	if upTo <= 0 || left < 0 {
		left = 0
	}
	if _, err := s.exec(ctx, tx, "UPDATE ChatUnread SET Unread = ?, MinId = ? WHERE ChatId = ? AND UserId = ?",
		left, next, chatID, reader); err != nil {
		return nil, fmt.Errorf("update unread count: %w", err)
	}
	return ids, nil
}

// unreadIDsSQL selects the ids of a chat's messages to one user not read yet from an id on
// (arguments: chat id, min id, user id), a range of ChatMessage_Chat; unreadIDsUpToSQL
// those up to an id (a fourth argument). 3 is chat.StatusRead.
const (
	unreadIDsSQL     = "SELECT Id FROM ChatMessage WHERE ChatId = ? AND Id >= ? AND ToUserId = ? AND StatusId < 3"
	unreadIDsUpToSQL = unreadIDsSQL + " AND Id <= ?"
)
