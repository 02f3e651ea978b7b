-- +goose Up
-- ChatUnread keeps, per chat and recipient, how many messages to them are not read yet
-- (Unread) and a bound on their ids (MinId: none has a smaller id). It replaces the index
-- ChatMessage_Unread, which was the third B-tree ordered by something else than time that
-- every message wrote into: once the history is large each of those costs a page of its
-- own per message (chatsvc/NOTES.md, "Where a grown database's cost per message goes"),
-- while this table holds one short row per chat and participant. The writer adds a batch's
-- messages to it in the batch's transaction; MESSAGES_READ subtracts what it marked read
-- and scans ChatMessage_Chat from MinId.
CREATE TABLE ChatUnread (
    ChatId BIGINT NOT NULL,
    UserId BIGINT NOT NULL,
    Unread BIGINT NOT NULL,
    MinId  BIGINT NOT NULL,
    PRIMARY KEY (ChatId, UserId)
) WITHOUT ROWID;
INSERT INTO ChatUnread (ChatId, UserId, Unread, MinId)
SELECT ChatId, ToUserId, COUNT(*), MIN(Id) FROM ChatMessage WHERE StatusId < 3 GROUP BY ChatId, ToUserId;
DROP INDEX ChatMessage_Unread;

-- +goose Down
CREATE INDEX ChatMessage_Unread ON ChatMessage (ChatId, ToUserId) WHERE StatusId < 3;
DROP TABLE ChatUnread;
