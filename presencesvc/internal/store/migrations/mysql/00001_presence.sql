-- +goose Up
-- UserStatus is the seed's table (§9.2): one row per user ever seen. LastSeen is the last
-- time the user went offline, in Unix milliseconds (0 if never).
CREATE TABLE UserStatus (
    UserId   BIGINT     NOT NULL PRIMARY KEY,
    IsOnline TINYINT(1) NOT NULL DEFAULT 0,
    LastSeen BIGINT     NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- PresenceConnection is one open WebSocket connection on one edge.
CREATE TABLE PresenceConnection (
    ConnectionId VARCHAR(128) NOT NULL PRIMARY KEY,
    EdgeId       VARCHAR(64)  NOT NULL,
    UserId       BIGINT       NOT NULL,
    ConnectedAt  BIGINT       NOT NULL,
    -- (UserId, EdgeId) answers GetRoutes and the online check from the index alone.
    KEY PresenceConnection_UserId (UserId, EdgeId),
    KEY PresenceConnection_EdgeId (EdgeId)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Edge is one running edge process and its lease.
CREATE TABLE Edge (
    EdgeId         VARCHAR(64) NOT NULL PRIMARY KEY,
    LeaseExpiresAt BIGINT      NOT NULL,
    KEY Edge_LeaseExpiresAt (LeaseExpiresAt)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE Edge;
DROP TABLE PresenceConnection;
DROP TABLE UserStatus;
