package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/sqldb"
)

// Receipt reports messages written to a connection of their recipient (MarkDelivered).
type Receipt struct {
	Recipient int64
	// IDs may hold messages to someone else (ignored) and repeats.
	IDs []int64
}

// Delivered is a message that moved to delivered.
type Delivered struct {
	ID, ChatID, FromUserID int64
}

// MarkDelivered moves the messages among ids that were sent to recipient and are still
// sent_to_server to delivered, and returns exactly those, ascending by id.
func (s *Store) MarkDelivered(ctx context.Context, recipient int64, ids []int64) ([]Delivered, error) {
	out, err := s.MarkDeliveredBatch(ctx, []Receipt{{Recipient: recipient, IDs: ids}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// MarkDeliveredBatch applies receipts in one transaction: each message listed by a receipt
// of its recipient that is still sent_to_server moves to delivered. It returns, per
// receipt, the messages it moved, ascending by id; a message listed by several receipts
// counts for the first one only, so no change is ever reported twice.
func (s *Store) MarkDeliveredBatch(ctx context.Context, receipts []Receipt) ([][]Delivered, error) {
	var out [][]Delivered
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.markDeliveredTx(ctx, tx, receipts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// markDeliveredTx is MarkDeliveredBatch inside tx: one SELECT of the candidates (locked on
// MySQL; SQLite write transactions are exclusive) and one forward-only UPDATE of exactly
// the rows selected, per maxIn ids, whatever the number of receipts. Selecting first is
// what tells which rows changed, with their chat and sender for the events: MySQL has no
// UPDATE ... RETURNING, and its affected-rows count would not say which.
func (s *Store) markDeliveredTx(ctx context.Context, tx *sql.Tx, receipts []Receipt) ([][]Delivered, error) {
	if len(receipts) == 0 {
		return nil, nil
	}
	var all []int64
	for _, r := range receipts {
		all = append(all, r.IDs...)
	}
	if len(all) == 0 {
		return make([][]Delivered, len(receipts)), nil
	}
	slices.Sort(all)
	all = slices.Compact(all)
	type candidate struct{ chat, from, to int64 }
	sent := make(map[int64]candidate, len(all))
	err := chunks(all, maxIn, func(ids []int64) error {
		in, args := sqldb.PaddedIn(ids, 2)
		rows, err := s.txQuery(ctx, tx, "SELECT Id, ChatId, FromUserId, ToUserId FROM ChatMessage WHERE Id IN ("+
			in+") AND StatusId = ?"+s.forUpdate(), append(args, int(chat.StatusSent))...)
		if err != nil {
			return fmt.Errorf("select undelivered messages: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id int64
				c  candidate
			)
			if err := rows.Scan(&id, &c.chat, &c.from, &c.to); err != nil {
				return fmt.Errorf("scan undelivered message: %w", err)
			}
			sent[id] = c
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("select undelivered messages: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([][]Delivered, len(receipts))
	changed := make([]int64, 0, len(sent))
	for i, r := range receipts {
		for _, id := range r.IDs {
			c, ok := sent[id]
			if !ok || c.to != r.Recipient {
				continue
			}
			delete(sent, id) // claimed: a later receipt (or a repeat) does not count it again
			out[i] = append(out[i], Delivered{ID: id, ChatID: c.chat, FromUserID: c.from})
			changed = append(changed, id)
		}
		slices.SortFunc(out[i], func(a, b Delivered) int { return cmp.Compare(a.ID, b.ID) })
	}
	slices.Sort(changed)
	if err := s.setStatus(ctx, tx, changed, chat.StatusDelivered); err != nil {
		return nil, err
	}
	return out, nil
}
