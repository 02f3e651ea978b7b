package server_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		res, err := e.client.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{
			UserName: "Alice.G-1_", FirstName: " Alice ", LastName: strings.Repeat("é", 100), Email: "Alice@Example.com",
		}))
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		u := res.Msg.GetUser()
		if u.GetId() <= 0 || u.GetUserName() != "alice.g-1_" || u.GetFirstName() != "Alice" || u.GetEmail() != "Alice@Example.com" || u.GetPhone() != "" {
			t.Fatalf("got %v, want id > 0, userName alice.g-1_, firstName Alice, email as given, no phone", u)
		}

		dups := []struct {
			name string
			req  *profilev1.CreateUserRequest
			want string
		}{
			{"userName folded", &profilev1.CreateUserRequest{UserName: "ALICE.G-1_", FirstName: "A", LastName: "B", Email: "other@example.com"}, "userName:"},
			{"email ignoring case", &profilev1.CreateUserRequest{UserName: "alice2", FirstName: "A", LastName: "B", Email: "alice@EXAMPLE.COM"}, "email:"},
		}
		for _, tc := range dups {
			_, err := e.client.CreateUser(ctx, connect.NewRequest(tc.req))
			wantCode(t, err, connect.CodeAlreadyExists, tc.want)
		}
	})
}

func TestCreateUserValidation(t *testing.T) {
	t.Parallel()
	valid := func() *profilev1.CreateUserRequest {
		return &profilev1.CreateUserRequest{UserName: "valid", FirstName: "F", LastName: "L", Email: "v@example.com", Phone: "+1 (555) 010-99"}
	}
	tests := []struct {
		name   string
		mutate func(r *profilev1.CreateUserRequest)
		field  string
	}{
		{"userName too short", func(r *profilev1.CreateUserRequest) { r.UserName = "ab" }, "userName:"},
		{"userName too long", func(r *profilev1.CreateUserRequest) { r.UserName = strings.Repeat("a", 33) }, "userName:"},
		{"userName space", func(r *profilev1.CreateUserRequest) { r.UserName = "al ice" }, "userName:"},
		{"userName non-ASCII", func(r *profilev1.CreateUserRequest) { r.UserName = "alicé" }, "userName:"},
		{"userName Kelvin sign", func(r *profilev1.CreateUserRequest) { r.UserName = "\u212aate" }, "userName:"},
		{"firstName empty", func(r *profilev1.CreateUserRequest) { r.FirstName = "" }, "firstName:"},
		{"firstName blank", func(r *profilev1.CreateUserRequest) { r.FirstName = "   " }, "firstName:"},
		{"firstName 101", func(r *profilev1.CreateUserRequest) { r.FirstName = strings.Repeat("ñ", 101) }, "firstName:"},
		{"lastName empty", func(r *profilev1.CreateUserRequest) { r.LastName = "" }, "lastName:"},
		{"lastName control", func(r *profilev1.CreateUserRequest) { r.LastName = "a\x00b" }, "lastName:"},
		{"email empty", func(r *profilev1.CreateUserRequest) { r.Email = "" }, "email:"},
		{"email no at", func(r *profilev1.CreateUserRequest) { r.Email = "example.com" }, "email:"},
		{"email two ats", func(r *profilev1.CreateUserRequest) { r.Email = "a@b@example.com" }, "email:"},
		{"email no local", func(r *profilev1.CreateUserRequest) { r.Email = "@example.com" }, "email:"},
		{"email no domain", func(r *profilev1.CreateUserRequest) { r.Email = "a@" }, "email:"},
		{"email space", func(r *profilev1.CreateUserRequest) { r.Email = "a b@example.com" }, "email:"},
		{"email 255 bytes", func(r *profilev1.CreateUserRequest) { r.Email = strings.Repeat("a", 243) + "@example.com" }, "email:"},
		{"phone letters", func(r *profilev1.CreateUserRequest) { r.Phone = "call me" }, "phone:"},
		{"phone 33", func(r *profilev1.CreateUserRequest) { r.Phone = strings.Repeat("1", 33) }, "phone:"},
	}
	forEachBackend(t, func(t *testing.T, e *env) {
		for _, tc := range tests {
			req := valid()
			tc.mutate(req)
			_, err := e.client.CreateUser(context.Background(), connect.NewRequest(req))
			t.Run(tc.name, func(t *testing.T) { wantCode(t, err, connect.CodeInvalidArgument, tc.field) })
		}
		// The limits themselves are accepted.
		req := valid()
		req.UserName, req.Email, req.Phone = strings.Repeat("z", 32), strings.Repeat("a", 242)+"@example.com", strings.Repeat("1", 32)
		if _, err := e.client.CreateUser(context.Background(), connect.NewRequest(req)); err != nil {
			t.Fatalf("CreateUser at the limits: %v", err)
		}
	})
}

func TestGetUsers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		a, b, c := e.createUser(t), e.createUser(t), e.createUser(t)
		e.queries.Reset()
		res, err := e.client.GetUsers(context.Background(), connect.NewRequest(&profilev1.GetUsersRequest{
			UserIds:   []int64{c.GetId(), 999999, a.GetId(), c.GetId()},
			UserNames: []string{strings.ToUpper(b.GetUserName()), "nobody", a.GetUserName()},
		}))
		if err != nil {
			t.Fatalf("GetUsers: %v", err)
		}
		if got, want := e.queries.Load(), int64(2); got != want {
			t.Errorf("got %d queries, want %d (one by id, one by name)", got, want)
		}
		var got []int64
		for _, u := range res.Msg.GetUsers() {
			got = append(got, u.GetId())
		}
		want := []int64{c.GetId(), a.GetId(), b.GetId(), a.GetId()}
		if !equal(got, want) {
			t.Fatalf("got ids %v, want %v", got, want)
		}
		if u := res.Msg.GetUsers()[0]; u.GetUserName() != c.GetUserName() || u.GetEmail() != c.GetEmail() {
			t.Fatalf("got %v, want %v", u, c)
		}
		empty, err := e.client.GetUsers(context.Background(), connect.NewRequest(&profilev1.GetUsersRequest{}))
		if err != nil || len(empty.Msg.GetUsers()) != 0 {
			t.Fatalf("GetUsers({}): got %v, %v; want no users", empty, err)
		}
	})
}

func TestListCountries(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		res, err := e.client.ListCountries(context.Background(), connect.NewRequest(&profilev1.ListCountriesRequest{}))
		if err != nil {
			t.Fatalf("ListCountries: %v", err)
		}
		cs := res.Msg.GetCountries()
		if got, want := len(cs), 249; got != want {
			t.Fatalf("got %d countries, want %d", got, want)
		}
		names := map[int32]string{}
		for i, c := range cs {
			if i > 0 && cs[i-1].GetId() >= c.GetId() {
				t.Fatalf("countries not ascending at %d: %d then %d", i, cs[i-1].GetId(), c.GetId())
			}
			names[c.GetId()] = c.GetName()
		}
		for id, want := range map[int32]string{724: "Spain", 484: "Mexico", 840: "United States", 4: "Afghanistan", 894: "Zambia", 384: "Côte d'Ivoire", 248: "Åland Islands"} {
			if got := names[id]; got != want {
				t.Errorf("country %d: got %q, want %q", id, got, want)
			}
		}
	})
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
