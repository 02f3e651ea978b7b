// Package profile holds the rules of the profile service: what a valid user, session
// lifetime and profile update are, the domain errors, and the Store the server keeps its
// data in. It reuses the generated profile.v1 messages as its data types: they are plain
// structs, and mirroring six curriculum sections field by field would only add mapping code.
package profile

import (
	"context"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// NewUser is a validated CreateUser request.
type NewUser struct {
	UserName  string // lower case
	FirstName string
	LastName  string
	Email     string // as given
	Phone     string
}

// Session is a valid session found by its token hash.
type Session struct {
	ID        int64
	ExpiresAt int64
	User      *profilev1.User
}

// EndedSession is a session that RevokeSession moved from active to revoked.
type EndedSession struct {
	ID     int64
	UserID int64
}

// Update is a validated UpdateProfile request. Nil pointers and nil sections are left as
// they are; a non-nil section (possibly empty) replaces that section whole.
type Update struct {
	UserID    int64
	FirstName *string
	LastName  *string
	Phone     *string
	Picture   *string
	Summary   *string
	CountryID *int32 // 0 clears

	Education      []*profilev1.EducationItem
	Experience     []*profilev1.ExperienceItem
	Certifications []*profilev1.CertificationItem
	Skills         []*profilev1.SkillItem
	Languages      []*profilev1.LanguageItem
	Projects       []*profilev1.ProjectItem

	// Sections tells which sections were given (a given section may be empty).
	Sections Sections
}

// Sections flags the curriculum sections of an update.
type Sections struct {
	Education, Experience, Certifications, Skills, Languages, Projects bool
}

// Store keeps users, sessions, countries and profiles. Times are Unix milliseconds.
// Errors the caller must tell apart are *Error values (NotFound, Conflict, Invalid,
// Unauthenticated); anything else is an internal failure.
type Store interface {
	// CreateUser stores a user; Conflict names userName or email when taken.
	CreateUser(ctx context.Context, u NewUser, now int64) (*profilev1.User, error)
	// CreateSession stores a session under the token's hash; NotFound for an unknown user.
	CreateSession(ctx context.Context, userID int64, tokenHash string, expiresAt, now int64) (int64, error)
	// RevokeSession marks the session with that hash revoked. It returns the session when it
	// was active until now, nil when it was unknown, expired or already revoked.
	RevokeSession(ctx context.Context, tokenHash string, now int64) (*EndedSession, error)
	// ResolveSession finds the active session with that hash and its user in one query;
	// Unauthenticated otherwise.
	ResolveSession(ctx context.Context, tokenHash string, now int64) (*Session, error)
	// ResolveSessions finds the active sessions of many hashes (at most a few hundred;
	// repeats allowed) and their users in one query, by hash; a hash without an active
	// session is absent from the map.
	ResolveSessions(ctx context.Context, tokenHashes []string, now int64) (map[string]*Session, error)
	// CheckSessions returns the state of every given session; missing ones are REVOKED.
	CheckSessions(ctx context.Context, ids []int64, now int64) (map[int64]profilev1.SessionState, error)
	// ListCountries returns every country by ascending id.
	ListCountries(ctx context.Context) ([]*profilev1.Country, error)
	// UsersByID returns the users found, in no particular order.
	UsersByID(ctx context.Context, ids []int64) ([]*profilev1.User, error)
	// UsersByName returns the users found by (lower-case) userName, in no particular order.
	UsersByName(ctx context.Context, names []string) ([]*profilev1.User, error)
	// ListUsers returns up to limit users with an id above afterID, by ascending id.
	ListUsers(ctx context.Context, afterID int64, limit int) ([]*profilev1.User, error)
	// Profile returns the whole profile of a user, unfiltered, with isOnline and lastSeen
	// unset; NotFound for an unknown user.
	Profile(ctx context.Context, userID int64) (*profilev1.ProfileData, error)
	// UpdateProfile applies a validated update in one transaction. Invalid names an unknown
	// country or an item id that is not the user's; NotFound is an unknown user.
	UpdateProfile(ctx context.Context, u Update) error
}
