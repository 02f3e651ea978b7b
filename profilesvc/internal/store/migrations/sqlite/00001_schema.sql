-- +goose Up
CREATE TABLE `Country` (
  Id   INTEGER PRIMARY KEY,
  Name TEXT NOT NULL
);

CREATE TABLE `User` (
  Id         INTEGER PRIMARY KEY AUTOINCREMENT,
  UserName   TEXT NOT NULL UNIQUE,
  FirstName  TEXT NOT NULL,
  LastName   TEXT NOT NULL,
  Email      TEXT NOT NULL,
  -- EmailLower makes the email unique ignoring case on both databases.
  EmailLower TEXT NOT NULL UNIQUE,
  Phone      TEXT NOT NULL DEFAULT '',
  Picture    TEXT NOT NULL DEFAULT '',
  Summary    TEXT NOT NULL DEFAULT '',
  CountryId  INTEGER NULL REFERENCES `Country` (Id),
  CreatedAt  INTEGER NOT NULL
);

-- Tk is the hex SHA-256 of the session token; the token itself is never stored.
CREATE TABLE `Session` (
  Id        INTEGER PRIMARY KEY AUTOINCREMENT,
  Tk        TEXT NOT NULL UNIQUE,
  UserId    INTEGER NOT NULL REFERENCES `User` (Id) ON DELETE CASCADE,
  ExpiresAt INTEGER NOT NULL,
  RevokedAt INTEGER NULL,
  CreatedAt INTEGER NOT NULL
);
CREATE INDEX Session_UserId ON `Session` (UserId);

CREATE TABLE `Education` (
  Id             INTEGER PRIMARY KEY AUTOINCREMENT,
  UserId         INTEGER NOT NULL REFERENCES `User` (Id) ON DELETE CASCADE,
  Institution    TEXT NOT NULL,
  Degree         TEXT NOT NULL DEFAULT '',
  FieldOfStudy   TEXT NOT NULL DEFAULT '',
  Campus         TEXT NOT NULL DEFAULT '',
  StartDate      TEXT NOT NULL DEFAULT '',
  GraduationDate TEXT NOT NULL DEFAULT '',
  CountryId      INTEGER NULL REFERENCES `Country` (Id)
);
CREATE INDEX Education_UserId ON `Education` (UserId, Id);

CREATE TABLE `WorkExperience` (
  Id          INTEGER PRIMARY KEY AUTOINCREMENT,
  UserId      INTEGER NOT NULL REFERENCES `User` (Id) ON DELETE CASCADE,
  Company     TEXT NOT NULL,
  Position    TEXT NOT NULL,
  Description TEXT NOT NULL DEFAULT '',
  StartDate   TEXT NOT NULL DEFAULT '',
  EndDate     TEXT NOT NULL DEFAULT '',
  CountryId   INTEGER NULL REFERENCES `Country` (Id)
);
CREATE INDEX WorkExperience_UserId ON `WorkExperience` (UserId, Id);

CREATE TABLE `Certification` (
  Id            INTEGER PRIMARY KEY AUTOINCREMENT,
  UserId        INTEGER NOT NULL REFERENCES `User` (Id) ON DELETE CASCADE,
  Name          TEXT NOT NULL,
  Issuer        TEXT NOT NULL DEFAULT '',
  IssueDate     TEXT NOT NULL DEFAULT '',
  CredentialUrl TEXT NOT NULL DEFAULT ''
);
CREATE INDEX Certification_UserId ON `Certification` (UserId, Id);

CREATE TABLE `Skill` (
  Id     INTEGER PRIMARY KEY AUTOINCREMENT,
  UserId INTEGER NOT NULL REFERENCES `User` (Id) ON DELETE CASCADE,
  Name   TEXT NOT NULL,
  Level  INTEGER NOT NULL
);
CREATE INDEX Skill_UserId ON `Skill` (UserId, Id);

CREATE TABLE `Language` (
  Id          INTEGER PRIMARY KEY AUTOINCREMENT,
  UserId      INTEGER NOT NULL REFERENCES `User` (Id) ON DELETE CASCADE,
  Name        TEXT NOT NULL,
  Proficiency TEXT NOT NULL
);
CREATE INDEX Language_UserId ON `Language` (UserId, Id);

CREATE TABLE `Project` (
  Id          INTEGER PRIMARY KEY AUTOINCREMENT,
  UserId      INTEGER NOT NULL REFERENCES `User` (Id) ON DELETE CASCADE,
  Name        TEXT NOT NULL,
  Description TEXT NOT NULL DEFAULT '',
  Url         TEXT NOT NULL DEFAULT '',
  StartDate   TEXT NOT NULL DEFAULT '',
  EndDate     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX Project_UserId ON `Project` (UserId, Id);

-- +goose Down
DROP TABLE `Project`;
DROP TABLE `Language`;
DROP TABLE `Skill`;
DROP TABLE `Certification`;
DROP TABLE `WorkExperience`;
DROP TABLE `Education`;
DROP TABLE `Session`;
DROP TABLE `User`;
DROP TABLE `Country`;
