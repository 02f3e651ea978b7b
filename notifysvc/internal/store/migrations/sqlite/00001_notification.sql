-- +goose Up
-- AUTOINCREMENT keeps ids from ever being reused after pruning, so a client's cursor and
-- its numeric comparison of ids stay meaningful.
CREATE TABLE Notification (
    Id        INTEGER PRIMARY KEY AUTOINCREMENT,
    UserId    INTEGER NOT NULL,
    Type      TEXT    NOT NULL,
    Title     TEXT    NOT NULL,
    Message   TEXT    NOT NULL,
    Payload   TEXT    NOT NULL DEFAULT '{}',
    CreatedAt INTEGER NOT NULL,
    IsRead    INTEGER NOT NULL DEFAULT 0
);
-- Newest-first pages with a before cursor, and per-user retention by count.
CREATE INDEX idx_notification_user_id ON Notification (UserId, Id);
-- Unread-only pages and the unread count.
CREATE INDEX idx_notification_user_unread ON Notification (UserId, IsRead, Id);
-- Retention by age.
CREATE INDEX idx_notification_created ON Notification (CreatedAt);

-- +goose Down
DROP TABLE Notification;
