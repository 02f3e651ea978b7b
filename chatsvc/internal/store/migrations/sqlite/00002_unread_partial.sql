-- +goose Up
-- ChatMessage_Unread holds only the messages not read yet, keyed without their status: a
-- message moving from sent_to_server to delivered keeps its entry as it is, so a delivery
-- receipt writes no index page (the whole index was one of the three random B-tree leaves
-- every message dirtied twice, at insert and at delivery), and a read removes the entry, so
-- the index stays the size of the unread backlog. The rowid (Id) closes every SQLite index,
-- so MESSAGES_READ's "Id <= ?" is a range on it. Queries must state "StatusId < 3"
-- literally for the planner to pick a partial index.
DROP INDEX ChatMessage_Unread;
CREATE INDEX ChatMessage_Unread ON ChatMessage (ChatId, ToUserId) WHERE StatusId < 3;

-- +goose Down
DROP INDEX ChatMessage_Unread;
CREATE INDEX ChatMessage_Unread ON ChatMessage (ChatId, ToUserId, StatusId);
