-- +goose Up
-- The unread count of each user, kept in step with Notification by every write in the same
-- transaction, so GET_NOTIFICATIONS reads one row instead of counting index entries.
CREATE TABLE NotificationUnread (
    UserId INTEGER PRIMARY KEY,
    Unread INTEGER NOT NULL DEFAULT 0
);
INSERT INTO NotificationUnread (UserId, Unread)
    SELECT UserId, COUNT(*) FROM Notification WHERE IsRead = 0 GROUP BY UserId;

-- +goose Down
DROP TABLE NotificationUnread;
