package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/charla/charla/profilesvc/internal/profile"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/sqldb"
)

// Profile implements profile.Store. It runs seven queries whatever the number of items:
// one for the user with its country, one per curriculum section; education and experience
// take their countryName from a LEFT JOIN on Country (docs/protocol.md §6.4: one JOIN per section). The queries run outside a
// transaction: on SQLite a transaction would take the write lock, and a profile read
// across a concurrent update at worst mixes the old and new version of different sections.
func (s *Store) Profile(ctx context.Context, userID int64) (*profilev1.ProfileData, error) {
	p := &profilev1.ProfileData{Curriculum: &profilev1.Curriculum{
		Education:      []*profilev1.EducationItem{},
		Experience:     []*profilev1.ExperienceItem{},
		Certifications: []*profilev1.CertificationItem{},
		Skills:         []*profilev1.SkillItem{},
		Languages:      []*profilev1.LanguageItem{},
		Projects:       []*profilev1.ProjectItem{},
	}}
	err := s.db.QueryRowContext(ctx,
		"SELECT u.Id, u.UserName, u.FirstName, u.LastName, u.Email, u.Phone, u.Picture, u.Summary,"+
			" COALESCE(u.CountryId, 0), COALESCE(c.Name, '')"+
			" FROM `User` u LEFT JOIN `Country` c ON c.Id = u.CountryId WHERE u.Id = ?", userID).
		Scan(&p.Id, &p.UserName, &p.FirstName, &p.LastName, &p.Email, &p.Phone, &p.Picture, &p.Summary, &p.CountryId, &p.CountryName)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, profile.Errorf(profile.CodeNotFound, "userId: no user %d", userID)
	}
	if err != nil {
		return nil, fmt.Errorf("get user %d: %w", userID, err)
	}
	cv := p.Curriculum
	tasks := []func() error{
		func() error {
			return each(ctx, s.db.DB, "education",
				"SELECT e.Id, e.Institution, e.Degree, e.FieldOfStudy, e.Campus, e.StartDate, e.GraduationDate,"+
					" COALESCE(e.CountryId, 0), COALESCE(c.Name, '')"+
					" FROM `Education` e LEFT JOIN `Country` c ON c.Id = e.CountryId WHERE e.UserId = ? ORDER BY e.Id", userID,
				func(r *sql.Rows) error {
					it := new(profilev1.EducationItem)
					cv.Education = append(cv.Education, it)
					return r.Scan(&it.Id, &it.Institution, &it.Degree, &it.FieldOfStudy, &it.Campus, &it.StartDate, &it.GraduationDate, &it.CountryId, &it.CountryName)
				})
		},
		func() error {
			return each(ctx, s.db.DB, "experience",
				"SELECT w.Id, w.Company, w.Position, w.Description, w.StartDate, w.EndDate,"+
					" COALESCE(w.CountryId, 0), COALESCE(c.Name, '')"+
					" FROM `WorkExperience` w LEFT JOIN `Country` c ON c.Id = w.CountryId WHERE w.UserId = ? ORDER BY w.Id", userID,
				func(r *sql.Rows) error {
					it := new(profilev1.ExperienceItem)
					cv.Experience = append(cv.Experience, it)
					return r.Scan(&it.Id, &it.Company, &it.Position, &it.Description, &it.StartDate, &it.EndDate, &it.CountryId, &it.CountryName)
				})
		},
		func() error {
			return each(ctx, s.db.DB, "certifications",
				"SELECT Id, Name, Issuer, IssueDate, CredentialUrl FROM `Certification` WHERE UserId = ? ORDER BY Id", userID,
				func(r *sql.Rows) error {
					it := new(profilev1.CertificationItem)
					cv.Certifications = append(cv.Certifications, it)
					return r.Scan(&it.Id, &it.Name, &it.Issuer, &it.IssueDate, &it.CredentialUrl)
				})
		},
		func() error {
			return each(ctx, s.db.DB, "skills",
				"SELECT Id, Name, Level FROM `Skill` WHERE UserId = ? ORDER BY Id", userID,
				func(r *sql.Rows) error {
					it := new(profilev1.SkillItem)
					cv.Skills = append(cv.Skills, it)
					// Level 0 is stored for a skill given without one; it stays absent.
					var level int32
					if err := r.Scan(&it.Id, &it.Name, &level); err != nil {
						return err
					}
					if level != 0 {
						it.Level = &level
					}
					return nil
				})
		},
		func() error {
			return each(ctx, s.db.DB, "languages",
				"SELECT Id, Name, Proficiency FROM `Language` WHERE UserId = ? ORDER BY Id", userID,
				func(r *sql.Rows) error {
					it := new(profilev1.LanguageItem)
					cv.Languages = append(cv.Languages, it)
					return r.Scan(&it.Id, &it.Name, &it.Proficiency)
				})
		},
		func() error {
			return each(ctx, s.db.DB, "projects",
				"SELECT Id, Name, Description, Url, StartDate, EndDate FROM `Project` WHERE UserId = ? ORDER BY Id", userID,
				func(r *sql.Rows) error {
					it := new(profilev1.ProjectItem)
					cv.Projects = append(cv.Projects, it)
					return r.Scan(&it.Id, &it.Name, &it.Description, &it.Url, &it.StartDate, &it.EndDate)
				})
		},
	}
	// The sections are independent: run their queries side by side, so a call costs about
	// one round trip to the database after the user's row instead of six in a row.
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, task := range tasks {
		wg.Go(func() { errs[i] = task() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// each runs one query and calls scan for every row.
func each(ctx context.Context, q queryer, what, query string, arg any, scan func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, arg)
	if err != nil {
		return fmt.Errorf("get %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("scan %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("get %s: %w", what, err)
	}
	return nil
}

// section describes one curriculum table for the update.
type section struct {
	name    string // JSON name, for error messages
	table   string
	columns []string // besides Id and UserId
	rows    [][]any  // values of columns, one per item
	ids     []int64  // item ids, 0 for new items
}

// countryRef is a country id some field of the update refers to.
type countryRef struct {
	field string
	id    int32
}

// UpdateProfile implements profile.Store: in one transaction it locks the user, checks that
// every referenced country exists and every item id is the user's, updates the basic fields
// and rewrites each given section (a DELETE and one multi-row INSERT that keeps the ids of
// the items that had one, so new items get higher ids and come back last).
func (s *Store) UpdateProfile(ctx context.Context, u profile.Update) error {
	var refs []countryRef
	if u.CountryID != nil && *u.CountryID != 0 {
		refs = append(refs, countryRef{"countryId", *u.CountryID})
	}
	var sections []section
	if u.Sections.Education {
		sec := section{name: "education", table: "Education", columns: []string{"Institution", "Degree", "FieldOfStudy", "Campus", "StartDate", "GraduationDate", "CountryId"}}
		for i, it := range u.Education {
			sec.ids = append(sec.ids, it.Id)
			sec.rows = append(sec.rows, []any{it.Institution, it.Degree, it.FieldOfStudy, it.Campus, it.StartDate, it.GraduationDate, nullCountry(it.CountryId)})
			if it.CountryId != 0 {
				refs = append(refs, countryRef{fmt.Sprintf("curriculum.education[%d].countryId", i), it.CountryId})
			}
		}
		sections = append(sections, sec)
	}
	if u.Sections.Experience {
		sec := section{name: "experience", table: "WorkExperience", columns: []string{"Company", "Position", "Description", "StartDate", "EndDate", "CountryId"}}
		for i, it := range u.Experience {
			sec.ids = append(sec.ids, it.Id)
			sec.rows = append(sec.rows, []any{it.Company, it.Position, it.Description, it.StartDate, it.EndDate, nullCountry(it.CountryId)})
			if it.CountryId != 0 {
				refs = append(refs, countryRef{fmt.Sprintf("curriculum.experience[%d].countryId", i), it.CountryId})
			}
		}
		sections = append(sections, sec)
	}
	if u.Sections.Certifications {
		sec := section{name: "certifications", table: "Certification", columns: []string{"Name", "Issuer", "IssueDate", "CredentialUrl"}}
		for _, it := range u.Certifications {
			sec.ids = append(sec.ids, it.Id)
			sec.rows = append(sec.rows, []any{it.Name, it.Issuer, it.IssueDate, it.CredentialUrl})
		}
		sections = append(sections, sec)
	}
	if u.Sections.Skills {
		sec := section{name: "skills", table: "Skill", columns: []string{"Name", "Level"}}
		for _, it := range u.Skills {
			sec.ids = append(sec.ids, it.Id)
			sec.rows = append(sec.rows, []any{it.Name, it.GetLevel()}) // 0 when not given
		}
		sections = append(sections, sec)
	}
	if u.Sections.Languages {
		sec := section{name: "languages", table: "Language", columns: []string{"Name", "Proficiency"}}
		for _, it := range u.Languages {
			sec.ids = append(sec.ids, it.Id)
			sec.rows = append(sec.rows, []any{it.Name, it.Proficiency})
		}
		sections = append(sections, sec)
	}
	if u.Sections.Projects {
		sec := section{name: "projects", table: "Project", columns: []string{"Name", "Description", "Url", "StartDate", "EndDate"}}
		for _, it := range u.Projects {
			sec.ids = append(sec.ids, it.Id)
			sec.rows = append(sec.rows, []any{it.Name, it.Description, it.Url, it.StartDate, it.EndDate})
		}
		sections = append(sections, sec)
	}

	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Lock the user first (MySQL) so concurrent updates of one profile serialize; report
		// a missing user only after the input checks, which come first by contract.
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM `User` WHERE Id = ?"+s.forUpdate, u.UserID).Scan(&one)
		userMissing := errors.Is(err, sql.ErrNoRows)
		if err != nil && !userMissing {
			return fmt.Errorf("lock user: %w", err)
		}
		if err := checkCountries(ctx, tx, refs); err != nil {
			return err
		}
		for _, sec := range sections {
			if err := checkItemIDs(ctx, tx, u.UserID, sec); err != nil {
				return err
			}
		}
		if userMissing {
			return profile.Errorf(profile.CodeNotFound, "userId: no user %d", u.UserID)
		}
		if err := updateBasics(ctx, tx, u); err != nil {
			return err
		}
		for _, sec := range sections {
			if err := replaceSection(ctx, tx, u.UserID, sec); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkCountries fails with Invalid, naming the first field, when a referenced country is unknown.
func checkCountries(ctx context.Context, tx *sql.Tx, refs []countryRef) error {
	if len(refs) == 0 {
		return nil
	}
	ids := make([]int64, len(refs))
	for i, r := range refs {
		ids[i] = int64(r.id)
	}
	ids = sortedUnique(ids)
	known := make(map[int64]bool, len(ids))
	rows, err := tx.QueryContext(ctx, "SELECT Id FROM `Country` WHERE Id IN ("+sqldb.Placeholders(len(ids))+")", sqldb.Int64Args(ids)...)
	if err != nil {
		return fmt.Errorf("check countries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("check countries: %w", err)
		}
		known[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check countries: %w", err)
	}
	for _, r := range refs {
		if !known[int64(r.id)] {
			return profile.Errorf(profile.CodeInvalid, "%s: unknown country %d", r.field, r.id)
		}
	}
	return nil
}

// checkItemIDs fails with Invalid, naming the item, when an item id given in a section is
// not one of the user's items of that section.
func checkItemIDs(ctx context.Context, tx *sql.Tx, userID int64, sec section) error {
	var given []int64
	for _, id := range sec.ids {
		if id != 0 {
			given = append(given, id)
		}
	}
	if len(given) == 0 {
		return nil
	}
	args := append([]any{userID}, sqldb.Int64Args(given)...)
	rows, err := tx.QueryContext(ctx, "SELECT Id FROM `"+sec.table+"` WHERE UserId = ? AND Id IN ("+sqldb.Placeholders(len(given))+")", args...)
	if err != nil {
		return fmt.Errorf("check %s ids: %w", sec.name, err)
	}
	defer rows.Close()
	mine := make(map[int64]bool, len(given))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("check %s ids: %w", sec.name, err)
		}
		mine[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check %s ids: %w", sec.name, err)
	}
	for i, id := range sec.ids {
		if id != 0 && !mine[id] {
			return profile.Errorf(profile.CodeInvalid, "curriculum.%s[%d].id: %d is not one of your %s items", sec.name, i, id, sec.name)
		}
	}
	return nil
}

// updateBasics sets the basic fields given in the update.
func updateBasics(ctx context.Context, tx *sql.Tx, u profile.Update) error {
	var (
		sets []string
		args []any
	)
	add := func(col string, v any) {
		sets = append(sets, col+" = ?")
		args = append(args, v)
	}
	if u.FirstName != nil {
		add("FirstName", *u.FirstName)
	}
	if u.LastName != nil {
		add("LastName", *u.LastName)
	}
	if u.Phone != nil {
		add("Phone", *u.Phone)
	}
	if u.Picture != nil {
		add("Picture", *u.Picture)
	}
	if u.Summary != nil {
		add("Summary", *u.Summary)
	}
	if u.CountryID != nil {
		add("CountryId", nullCountry(*u.CountryID))
	}
	if len(sets) == 0 {
		return nil
	}
	args = append(args, u.UserID)
	if _, err := tx.ExecContext(ctx, "UPDATE `User` SET "+strings.Join(sets, ", ")+" WHERE Id = ?", args...); err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	return nil
}

// replaceSection deletes a section's items and inserts the new list in one statement.
// Items that had an id keep it (an explicit Id); new ones get NULL, so both databases
// assign them ids above every id used so far, in the order given.
func replaceSection(ctx context.Context, tx *sql.Tx, userID int64, sec section) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM `"+sec.table+"` WHERE UserId = ?", userID); err != nil {
		return fmt.Errorf("clear %s: %w", sec.name, err)
	}
	if len(sec.rows) == 0 {
		return nil
	}
	row := "(" + sqldb.Placeholders(len(sec.columns)+2) + ")"
	values := strings.TrimSuffix(strings.Repeat(row+", ", len(sec.rows)), ", ")
	args := make([]any, 0, len(sec.rows)*(len(sec.columns)+2))
	for i, r := range sec.rows {
		var id any
		if sec.ids[i] != 0 {
			id = sec.ids[i]
		}
		args = append(args, id, userID)
		args = append(args, r...)
	}
	query := "INSERT INTO `" + sec.table + "` (Id, UserId, " + strings.Join(sec.columns, ", ") + ") VALUES " + values
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("insert %s: %w", sec.name, err)
	}
	return nil
}
