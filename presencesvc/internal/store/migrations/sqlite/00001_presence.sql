-- +goose Up
-- UserStatus is the seed's table (§9.2): one row per user ever seen. LastSeen is the last
-- time the user went offline, in Unix milliseconds (0 if never).
CREATE TABLE UserStatus (
    UserId   INTEGER PRIMARY KEY,
    IsOnline INTEGER NOT NULL DEFAULT 0,
    LastSeen INTEGER NOT NULL DEFAULT 0
);

-- PresenceConnection is one open WebSocket connection on one edge.
CREATE TABLE PresenceConnection (
    ConnectionId TEXT    NOT NULL PRIMARY KEY,
    EdgeId       TEXT    NOT NULL,
    UserId       INTEGER NOT NULL,
    ConnectedAt  INTEGER NOT NULL
);
-- (UserId, EdgeId) answers GetRoutes and the online check from the index alone.
CREATE INDEX PresenceConnection_UserId ON PresenceConnection (UserId, EdgeId);
CREATE INDEX PresenceConnection_EdgeId ON PresenceConnection (EdgeId);

-- Edge is one running edge process and its lease.
CREATE TABLE Edge (
    EdgeId         TEXT    NOT NULL PRIMARY KEY,
    LeaseExpiresAt INTEGER NOT NULL
);
CREATE INDEX Edge_LeaseExpiresAt ON Edge (LeaseExpiresAt);

-- +goose Down
DROP TABLE Edge;
DROP TABLE PresenceConnection;
DROP TABLE UserStatus;
