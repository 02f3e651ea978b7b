-- +goose Up
CREATE TABLE Notification (
    Id        BIGINT        NOT NULL AUTO_INCREMENT,
    UserId    BIGINT        NOT NULL,
    Type      VARCHAR(64)   NOT NULL,
    Title     VARCHAR(200)  NOT NULL,
    Message   VARCHAR(2000) NOT NULL,
    Payload   TEXT          NOT NULL,
    CreatedAt BIGINT        NOT NULL,
    IsRead    TINYINT(1)    NOT NULL DEFAULT 0,
    PRIMARY KEY (Id),
    -- Newest-first pages with a before cursor, and per-user retention by count.
    KEY idx_notification_user_id (UserId, Id),
    -- Unread-only pages and the unread count.
    KEY idx_notification_user_unread (UserId, IsRead, Id),
    -- Retention by age.
    KEY idx_notification_created (CreatedAt)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE Notification;
