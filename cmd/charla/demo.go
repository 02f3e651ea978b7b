package main

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/peers"
)

// demoUser is one demo user with the profile it gets when first created.
type demoUser struct {
	create  *profilev1.CreateUserRequest
	profile *profilev1.UpdateProfileRequest
}

// demoUsers are the users of docs/protocol.md §1.1.
var demoUsers = []demoUser{
	{
		create: &profilev1.CreateUserRequest{UserName: "alice", FirstName: "Alice", LastName: "García", Email: "alice@example.com", Phone: "+34 600 000 001"},
		profile: &profilev1.UpdateProfileRequest{
			Summary:   proto.String("Backend engineer who likes real-time systems."),
			CountryId: proto.Int32(724),
			Picture:   proto.String("https://example.com/avatars/alice.png"),
			Education: &profilev1.EducationSection{Items: []*profilev1.EducationItem{
				{Institution: "Universidad Politécnica de Madrid", Degree: "MSc", FieldOfStudy: "Computer Science", Campus: "Montegancedo", StartDate: "2012-09-01", GraduationDate: "2014-06-30", CountryId: 724},
			}},
			Experience: &profilev1.ExperienceSection{Items: []*profilev1.ExperienceItem{
				{Company: "Charla", Position: "Founding engineer", Description: "Chat backend in Go.", StartDate: "2024-01-15", CountryId: 724},
				{Company: "Telefónica", Position: "Software engineer", StartDate: "2014-09-01", EndDate: "2023-12-31", CountryId: 724},
			}},
			Certifications: &profilev1.CertificationSection{Items: []*profilev1.CertificationItem{
				{Name: "Certified Kubernetes Application Developer", Issuer: "CNCF", IssueDate: "2021-05-10", CredentialUrl: "https://example.com/ckad/alice"},
			}},
			Skills: &profilev1.SkillSection{Items: []*profilev1.SkillItem{
				{Name: "Go", Level: proto.Int32(5)}, {Name: "MySQL", Level: proto.Int32(4)},
			}},
			Languages: &profilev1.LanguageSection{Items: []*profilev1.LanguageItem{
				{Name: "Spanish", Proficiency: "native"}, {Name: "English", Proficiency: "advanced"},
			}},
			Projects: &profilev1.ProjectSection{Items: []*profilev1.ProjectItem{
				{Name: "charla", Description: "Real-time chat backend.", Url: "https://example.com/charla", StartDate: "2024-01-15"},
			}},
		},
	},
	{
		create: &profilev1.CreateUserRequest{UserName: "bob", FirstName: "Bob", LastName: "Hernández", Email: "bob@example.com", Phone: "+52 55 0000 0002"},
		profile: &profilev1.UpdateProfileRequest{
			Summary:   proto.String("Mobile developer."),
			CountryId: proto.Int32(484),
			Education: &profilev1.EducationSection{Items: []*profilev1.EducationItem{
				{Institution: "UNAM", Degree: "BSc", FieldOfStudy: "Computer Engineering", StartDate: "2010-08-01", GraduationDate: "2015-06-30", CountryId: 484},
			}},
			Experience: &profilev1.ExperienceSection{Items: []*profilev1.ExperienceItem{
				{Company: "Mercado Libre", Position: "Android developer", StartDate: "2016-02-01", CountryId: 484},
			}},
			Skills: &profilev1.SkillSection{Items: []*profilev1.SkillItem{{Name: "Kotlin", Level: proto.Int32(5)}}},
			Languages: &profilev1.LanguageSection{Items: []*profilev1.LanguageItem{
				{Name: "Spanish", Proficiency: "native"}, {Name: "English", Proficiency: "intermediate"},
			}},
		},
	},
	{
		create: &profilev1.CreateUserRequest{UserName: "carol", FirstName: "Carol", LastName: "Smith", Email: "carol@example.com"},
		profile: &profilev1.UpdateProfileRequest{
			Summary:   proto.String("Product designer."),
			CountryId: proto.Int32(840),
			Experience: &profilev1.ExperienceSection{Items: []*profilev1.ExperienceItem{
				{Company: "Figma", Position: "Designer", StartDate: "2019-03-01", EndDate: "2022-08-31", CountryId: 840},
			}},
			Languages: &profilev1.LanguageSection{Items: []*profilev1.LanguageItem{{Name: "English", Proficiency: "native"}}},
		},
	},
	{
		create: &profilev1.CreateUserRequest{UserName: "dave", FirstName: "Dave", LastName: "Jones", Email: "dave@example.com"},
	},
}

// demoContacts are the accepted contact pairs of docs/protocol.md §1.1, by userName.
var demoContacts = [][2]string{{"alice", "bob"}, {"alice", "carol"}}

// demoToken is a session of one demo user, for the banner.
type demoToken struct {
	name  string
	id    int64
	token string
}

// seedDemo creates the demo users (with their profiles) and contacts if absent, through the
// same RPCs any internal caller uses, and returns a fresh session token per user.
func seedDemo(ctx context.Context, c *peers.Clients) ([]demoToken, error) {
	ids := make(map[string]int64)
	for _, u := range demoUsers {
		id, created, err := ensureUser(ctx, c, u.create)
		if err != nil {
			return nil, err
		}
		ids[u.create.GetUserName()] = id
		if created && u.profile != nil {
			req := proto.Clone(u.profile).(*profilev1.UpdateProfileRequest)
			req.UserId = id
			if _, err := c.Profile.UpdateProfile(ctx, connect.NewRequest(req)); err != nil {
				return nil, fmt.Errorf("profile of %s: %w", u.create.GetUserName(), err)
			}
		}
	}
	for _, pair := range demoContacts {
		if _, err := c.Chat.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{
			UserId: ids[pair[0]], OtherUserId: ids[pair[1]],
		})); err != nil {
			return nil, fmt.Errorf("contact %s-%s: %w", pair[0], pair[1], err)
		}
	}
	tokens := make([]demoToken, 0, len(demoUsers))
	for _, u := range demoUsers {
		name := u.create.GetUserName()
		res, err := c.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: ids[name]}))
		if err != nil {
			return nil, fmt.Errorf("session of %s: %w", name, err)
		}
		tokens = append(tokens, demoToken{name: name, id: ids[name], token: res.Msg.GetToken()})
	}
	return tokens, nil
}

// ensureUser returns the id of the user named in req, creating it if absent.
func ensureUser(ctx context.Context, c *peers.Clients, req *profilev1.CreateUserRequest) (id int64, created bool, err error) {
	res, err := c.Profile.CreateUser(ctx, connect.NewRequest(req))
	if err == nil {
		return res.Msg.GetUser().GetId(), true, nil
	}
	if connect.CodeOf(err) != connect.CodeAlreadyExists {
		return 0, false, fmt.Errorf("create user %s: %w", req.GetUserName(), err)
	}
	found, err := c.Profile.GetUsers(ctx, connect.NewRequest(&profilev1.GetUsersRequest{UserNames: []string{req.GetUserName()}}))
	if err != nil {
		return 0, false, fmt.Errorf("look up user %s: %w", req.GetUserName(), err)
	}
	if len(found.Msg.GetUsers()) != 1 {
		return 0, false, errors.New("user " + req.GetUserName() + " exists but cannot be looked up by name")
	}
	return found.Msg.GetUsers()[0].GetId(), false, nil
}
