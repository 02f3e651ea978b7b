-- +goose Up
-- The unread count of each user, kept in step with Notification by every write in the same
-- transaction, so GET_NOTIFICATIONS reads one row instead of counting index entries.
CREATE TABLE NotificationUnread (
    UserId BIGINT NOT NULL,
    Unread BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (UserId)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO NotificationUnread (UserId, Unread)
    SELECT UserId, COUNT(*) FROM Notification WHERE IsRead = 0 GROUP BY UserId;

-- +goose Down
DROP TABLE NotificationUnread;
