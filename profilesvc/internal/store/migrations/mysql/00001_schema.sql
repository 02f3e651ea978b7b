-- +goose Up
CREATE TABLE `Country` (
  Id   INT NOT NULL PRIMARY KEY,
  Name VARCHAR(100) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `User` (
  Id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  UserName   VARCHAR(32) NOT NULL,
  FirstName  VARCHAR(100) NOT NULL,
  LastName   VARCHAR(100) NOT NULL,
  Email      VARCHAR(254) NOT NULL,
  -- EmailLower makes the email unique ignoring case (the collation is binary).
  EmailLower VARCHAR(254) NOT NULL,
  Phone      VARCHAR(32) NOT NULL DEFAULT '',
  Picture    VARCHAR(2048) NOT NULL DEFAULT '',
  Summary    TEXT NOT NULL,
  CountryId  INT NULL,
  CreatedAt  BIGINT NOT NULL,
  UNIQUE KEY User_UserName (UserName),
  UNIQUE KEY User_EmailLower (EmailLower),
  CONSTRAINT User_Country FOREIGN KEY (CountryId) REFERENCES `Country` (Id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Tk is the hex SHA-256 of the session token; the token itself is never stored.
CREATE TABLE `Session` (
  Id        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  Tk        CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  UserId    BIGINT NOT NULL,
  ExpiresAt BIGINT NOT NULL,
  RevokedAt BIGINT NULL,
  CreatedAt BIGINT NOT NULL,
  UNIQUE KEY Session_Tk (Tk),
  KEY Session_UserId (UserId),
  CONSTRAINT Session_User FOREIGN KEY (UserId) REFERENCES `User` (Id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `Education` (
  Id             BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  UserId         BIGINT NOT NULL,
  Institution    VARCHAR(200) NOT NULL,
  Degree         VARCHAR(200) NOT NULL DEFAULT '',
  FieldOfStudy   VARCHAR(200) NOT NULL DEFAULT '',
  Campus         VARCHAR(200) NOT NULL DEFAULT '',
  StartDate      VARCHAR(10) NOT NULL DEFAULT '',
  GraduationDate VARCHAR(10) NOT NULL DEFAULT '',
  CountryId      INT NULL,
  KEY Education_UserId (UserId, Id),
  CONSTRAINT Education_User FOREIGN KEY (UserId) REFERENCES `User` (Id) ON DELETE CASCADE,
  CONSTRAINT Education_Country FOREIGN KEY (CountryId) REFERENCES `Country` (Id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `WorkExperience` (
  Id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  UserId      BIGINT NOT NULL,
  Company     VARCHAR(200) NOT NULL,
  Position    VARCHAR(200) NOT NULL,
  Description TEXT NOT NULL,
  StartDate   VARCHAR(10) NOT NULL DEFAULT '',
  EndDate     VARCHAR(10) NOT NULL DEFAULT '',
  CountryId   INT NULL,
  KEY WorkExperience_UserId (UserId, Id),
  CONSTRAINT WorkExperience_User FOREIGN KEY (UserId) REFERENCES `User` (Id) ON DELETE CASCADE,
  CONSTRAINT WorkExperience_Country FOREIGN KEY (CountryId) REFERENCES `Country` (Id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `Certification` (
  Id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  UserId        BIGINT NOT NULL,
  Name          VARCHAR(200) NOT NULL,
  Issuer        VARCHAR(200) NOT NULL DEFAULT '',
  IssueDate     VARCHAR(10) NOT NULL DEFAULT '',
  CredentialUrl VARCHAR(2048) NOT NULL DEFAULT '',
  KEY Certification_UserId (UserId, Id),
  CONSTRAINT Certification_User FOREIGN KEY (UserId) REFERENCES `User` (Id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `Skill` (
  Id     BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  UserId BIGINT NOT NULL,
  Name   VARCHAR(200) NOT NULL,
  Level  TINYINT NOT NULL,
  KEY Skill_UserId (UserId, Id),
  CONSTRAINT Skill_User FOREIGN KEY (UserId) REFERENCES `User` (Id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `Language` (
  Id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  UserId      BIGINT NOT NULL,
  Name        VARCHAR(200) NOT NULL,
  Proficiency VARCHAR(16) NOT NULL,
  KEY Language_UserId (UserId, Id),
  CONSTRAINT Language_User FOREIGN KEY (UserId) REFERENCES `User` (Id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `Project` (
  Id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  UserId      BIGINT NOT NULL,
  Name        VARCHAR(200) NOT NULL,
  Description TEXT NOT NULL,
  Url         VARCHAR(2048) NOT NULL DEFAULT '',
  StartDate   VARCHAR(10) NOT NULL DEFAULT '',
  EndDate     VARCHAR(10) NOT NULL DEFAULT '',
  KEY Project_UserId (UserId, Id),
  CONSTRAINT Project_User FOREIGN KEY (UserId) REFERENCES `User` (Id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

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
