-- +goose Up
-- Contact is an accepted (or removed) pair of users; its Id is the id of their chat.
-- The pair is stored ordered (UserId1 < UserId2), so either order finds the same row.
CREATE TABLE Contact (
    Id        INTEGER PRIMARY KEY AUTOINCREMENT,
    UserId1   BIGINT  NOT NULL,
    UserId2   BIGINT  NOT NULL,
    Status    TEXT    NOT NULL DEFAULT 'accepted',
    CreatedAt BIGINT  NOT NULL,
    CHECK (UserId1 < UserId2),
    UNIQUE (UserId1, UserId2)
);
CREATE INDEX Contact_UserId2 ON Contact (UserId2, Status);

-- ChatMessage holds every message. StatusId: 1 sent_to_server, 2 delivered, 3 read.
CREATE TABLE ChatMessage (
    Id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ChatId          BIGINT  NOT NULL,
    FromUserId      BIGINT  NOT NULL,
    ToUserId        BIGINT  NOT NULL,
    Content         TEXT    NOT NULL,
    CreatedAt       BIGINT  NOT NULL,
    StatusId        INTEGER NOT NULL DEFAULT 1,
    ClientMessageId TEXT    NULL,
    UNIQUE (FromUserId, ClientMessageId)
);
-- History pages and the last message of a chat.
CREATE INDEX ChatMessage_Chat ON ChatMessage (ChatId, Id);
-- Unread counts and MESSAGES_READ.
CREATE INDEX ChatMessage_Unread ON ChatMessage (ChatId, ToUserId, StatusId);

-- ChatNotified records that a new_message notification was raised for a user in a chat;
-- no other is raised until the user reads the chat (the row is deleted then).
CREATE TABLE ChatNotified (
    ChatId BIGINT NOT NULL,
    UserId BIGINT NOT NULL,
    PRIMARY KEY (ChatId, UserId)
);

-- +goose Down
DROP TABLE ChatNotified;
DROP TABLE ChatMessage;
DROP TABLE Contact;
