-- +goose Up
-- Contact is an accepted (or removed) pair of users; its Id is the id of their chat.
-- The pair is stored ordered (UserId1 < UserId2), so either order finds the same row.
CREATE TABLE Contact (
    Id        BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    UserId1   BIGINT      NOT NULL,
    UserId2   BIGINT      NOT NULL,
    Status    VARCHAR(16) NOT NULL DEFAULT 'accepted',
    CreatedAt BIGINT      NOT NULL,
    CONSTRAINT Contact_Order CHECK (UserId1 < UserId2),
    UNIQUE KEY Contact_Pair (UserId1, UserId2),
    KEY Contact_UserId2 (UserId2, Status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- ChatMessage holds every message. StatusId: 1 sent_to_server, 2 delivered, 3 read.
-- ClientMessageId is VARBINARY so that the unique key compares bytes exactly (the _bin
-- collations ignore trailing spaces).
CREATE TABLE ChatMessage (
    Id              BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ChatId          BIGINT        NOT NULL,
    FromUserId      BIGINT        NOT NULL,
    ToUserId        BIGINT        NOT NULL,
    Content         TEXT          NOT NULL,
    CreatedAt       BIGINT        NOT NULL,
    StatusId        TINYINT       NOT NULL DEFAULT 1,
    ClientMessageId VARBINARY(64) NULL,
    UNIQUE KEY ChatMessage_ClientId (FromUserId, ClientMessageId),
    KEY ChatMessage_Chat (ChatId, Id),
    KEY ChatMessage_Unread (ChatId, ToUserId, StatusId)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- ChatNotified records that a new_message notification was raised for a user in a chat;
-- no other is raised until the user reads the chat (the row is deleted then).
CREATE TABLE ChatNotified (
    ChatId BIGINT NOT NULL,
    UserId BIGINT NOT NULL,
    PRIMARY KEY (ChatId, UserId)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE ChatNotified;
DROP TABLE ChatMessage;
DROP TABLE Contact;
