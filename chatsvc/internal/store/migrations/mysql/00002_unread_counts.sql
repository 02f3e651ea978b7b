-- +goose Up
-- ChatUnread keeps, per chat and recipient, how many messages to them are not read yet
-- (Unread) and a bound on their ids (MinId: none has a smaller id). It replaces the index
-- ChatMessage_Unread, which every message wrote twice (at insert, and again when its
-- status moved to delivered) at a place not ordered by time, while this table holds one
-- short row per chat and participant. The writer adds a batch's messages to it in the
-- batch's transaction, after their INSERT; MESSAGES_READ locks the row, subtracts what it
-- marked read and scans ChatMessage_Chat from MinId. A message whose id is below a
-- MESSAGES_READ bound but that commits after it (ids are taken at INSERT, commits come in
-- any order) lowers MinId again when the writer counts it, so it is never skipped.
CREATE TABLE ChatUnread (
    ChatId BIGINT NOT NULL,
    UserId BIGINT NOT NULL,
    Unread BIGINT NOT NULL,
    MinId  BIGINT NOT NULL,
    PRIMARY KEY (ChatId, UserId)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO ChatUnread (ChatId, UserId, Unread, MinId)
SELECT ChatId, ToUserId, COUNT(*), MIN(Id) FROM ChatMessage WHERE StatusId < 3 GROUP BY ChatId, ToUserId;
ALTER TABLE ChatMessage DROP INDEX ChatMessage_Unread;

-- +goose Down
ALTER TABLE ChatMessage ADD KEY ChatMessage_Unread (ChatId, ToUserId, StatusId);
DROP TABLE ChatUnread;
