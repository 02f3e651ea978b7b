package server_test

import (
	"context"
	"slices"
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

func TestListUsers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var want []int64
		for range 5 {
			want = append(want, e.createUser(t).GetId())
		}
		// Pages of 2: [1 2] [3 4] [5], each pointing at the next.
		var got []int64
		var after int64
		pages := 0
		for {
			res, err := e.client.ListUsers(ctx, connect.NewRequest(&profilev1.ListUsersRequest{AfterId: after, Limit: 2}))
			if err != nil {
				t.Fatalf("ListUsers(after %d): %v", after, err)
			}
			pages++
			for _, u := range res.Msg.GetUsers() {
				if u.GetUserName() == "" || u.GetEmail() == "" {
					t.Errorf("user %d lacks its fields: %v", u.GetId(), u)
				}
				got = append(got, u.GetId())
			}
			if n := len(res.Msg.GetUsers()); n > 2 {
				t.Fatalf("page of %d users, want at most 2", n)
			}
			after = res.Msg.GetNextAfterId()
			if after == 0 {
				break
			}
			if last := got[len(got)-1]; after != last {
				t.Fatalf("nextAfterId %d, want the page's last id %d", after, last)
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		if pages != 3 || !slices.Equal(got, want) {
			t.Errorf("%d pages with %v, want 3 pages with %v", pages, got, want)
		}
		// The default page holds them all and says it is the last.
		res, err := e.client.ListUsers(ctx, connect.NewRequest(&profilev1.ListUsersRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Msg.GetUsers()); n != 5 || res.Msg.GetNextAfterId() != 0 {
			t.Errorf("default page: %d users, next %d; want 5 and 0", n, res.Msg.GetNextAfterId())
		}
		// An exact fit is the last page too.
		res, err = e.client.ListUsers(ctx, connect.NewRequest(&profilev1.ListUsersRequest{AfterId: want[2], Limit: 2}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Msg.GetUsers()); n != 2 || res.Msg.GetNextAfterId() != 0 {
			t.Errorf("last two: %d users, next %d; want 2 and 0", n, res.Msg.GetNextAfterId())
		}

		for _, tc := range []struct {
			req   *profilev1.ListUsersRequest
			field string
		}{
			{&profilev1.ListUsersRequest{Limit: -1}, "limit:"},
			{&profilev1.ListUsersRequest{Limit: 1001}, "limit:"},
			{&profilev1.ListUsersRequest{AfterId: -1}, "afterId:"},
		} {
			_, err := e.client.ListUsers(ctx, connect.NewRequest(tc.req))
			wantCode(t, err, connect.CodeInvalidArgument, tc.field)
		}
	})
}
