package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// args returns a cobra argument check that reports a usage error naming what is expected.
func args(min, max int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, a []string) error {
		if len(a) < min || (max >= 0 && len(a) > max) {
			return usagef("want %s, got %d argument(s)", what, len(a))
		}
		return nil
	}
}

// required marks flags that a command cannot do without.
func required(c *cobra.Command, names ...string) {
	for _, n := range names {
		_ = c.MarkFlagRequired(n)
	}
}

// resolve finds the users named by id or userName, in the order given, and fails naming
// every one that does not exist.
func (a *app) resolve(ctx context.Context, what string, refs []string) ([]*profilev1.User, error) {
	req := &profilev1.GetUsersRequest{}
	for _, r := range refs {
		if id, err := strconv.ParseInt(r, 10, 64); err == nil {
			if id <= 0 {
				return nil, usagef("user id %d: ids are positive", id)
			}
			req.UserIds = append(req.UserIds, id)
		} else {
			req.UserNames = append(req.UserNames, strings.ToLower(r))
		}
	}
	res, err := a.clients.Profile.GetUsers(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, a.explain(err, "profile", what)
	}
	byID, byName := map[int64]*profilev1.User{}, map[string]*profilev1.User{}
	for _, u := range res.Msg.GetUsers() {
		byID[u.GetId()], byName[u.GetUserName()] = u, u
	}
	out := make([]*profilev1.User, 0, len(refs))
	var missing []string
	for _, r := range refs {
		u := byName[strings.ToLower(r)]
		if id, err := strconv.ParseInt(r, 10, 64); err == nil {
			u = byID[id]
		}
		if u == nil {
			missing = append(missing, r)
			continue
		}
		out = append(out, u)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: no user %s (charlactl users list shows them)", what, strings.Join(missing, ", "))
	}
	return out, nil
}

func (a *app) call(c *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context(), a.timeout)
}

func (a *app) usersCmd() *cobra.Command {
	users := &cobra.Command{Use: "users", Short: "Create, show and list users"}

	var first, last, email, phone string
	create := &cobra.Command{
		Use:   "create USERNAME --first-name F --last-name L --email E [--phone P]",
		Short: "Register a user",
		Args:  args(1, 1, "one USERNAME"),
		RunE: func(c *cobra.Command, argv []string) error {
			ctx, cancel := a.call(c)
			defer cancel()
			res, err := a.clients.Profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{
				UserName: argv[0], FirstName: first, LastName: last, Email: email, Phone: phone,
			}))
			if err != nil {
				return a.explain(err, "profile", "create user "+argv[0])
			}
			return a.emit(res.Msg, func(w io.Writer) {
				u := res.Msg.GetUser()
				printf(w, "created user %d %s\n", u.GetId(), u.GetUserName())
			})
		},
	}
	create.Flags().StringVar(&first, "first-name", "", "first name (1–100 characters)")
	create.Flags().StringVar(&last, "last-name", "", "last name (1–100 characters)")
	create.Flags().StringVar(&email, "email", "", "email address, unique ignoring case")
	create.Flags().StringVar(&phone, "phone", "", "phone number (optional)")
	required(create, "first-name", "last-name", "email")

	get := &cobra.Command{
		Use:   "get USER...",
		Short: "Show users by id or userName",
		Args:  args(1, -1, "at least one USER (id or userName)"),
		RunE: func(c *cobra.Command, argv []string) error {
			ctx, cancel := a.call(c)
			defer cancel()
			found, err := a.resolve(ctx, "get users", argv)
			if err != nil {
				return err
			}
			return a.emit(&profilev1.GetUsersResponse{Users: found}, func(w io.Writer) {
				table(w, userHeader, userRows(found))
			})
		},
	}

	var limit int32
	var after int64
	var all bool
	list := &cobra.Command{
		Use:   "list [--limit N] [--after ID] [--all]",
		Short: "List users by ascending id, a page at a time",
		Args:  args(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			page := &profilev1.ListUsersResponse{}
			next := after
			for {
				ctx, cancel := a.call(c)
				res, err := a.clients.Profile.ListUsers(ctx, connect.NewRequest(&profilev1.ListUsersRequest{AfterId: next, Limit: limit}))
				cancel()
				if err != nil {
					return a.explain(err, "profile", "list users")
				}
				page.Users = append(page.Users, res.Msg.GetUsers()...)
				next = res.Msg.GetNextAfterId()
				if !all || next == 0 {
					break
				}
			}
			page.NextAfterId = next
			return a.emit(page, func(w io.Writer) {
				table(w, userHeader, userRows(page.GetUsers()))
				if next != 0 {
					printf(a.stderr, "more users: charlactl users list --after %d\n", next)
				}
			})
		},
	}
	list.Flags().Int32Var(&limit, "limit", 0, "users per page, 1–1000 (default 100)")
	list.Flags().Int64Var(&after, "after", 0, "list users with an id above this one (the next page)")
	list.Flags().BoolVar(&all, "all", false, "follow every page")

	users.AddCommand(create, get, list)
	return users
}

func (a *app) sessionsCmd() *cobra.Command {
	sessions := &cobra.Command{Use: "sessions", Short: "Issue and revoke session tokens"}
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create USER [--ttl 720h]",
		Short: "Issue a session token for a user and print it",
		Long:  "Issue a session token for a user. The token is printed alone on stdout, once: TOKEN=$(charlactl sessions create alice).",
		Args:  args(1, 1, "one USER (id or userName)"),
		RunE: func(c *cobra.Command, argv []string) error {
			if ttl < 0 || ttl%time.Second != 0 {
				return usagef("--ttl %v: want whole seconds, 1s to 8760h (0 for the service's 30 days)", ttl)
			}
			ctx, cancel := a.call(c)
			defer cancel()
			us, err := a.resolve(ctx, "create session", argv)
			if err != nil {
				return err
			}
			res, err := a.clients.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{
				UserId: us[0].GetId(), TtlSeconds: int64(ttl / time.Second),
			}))
			if err != nil {
				return a.explain(err, "profile", "create session for "+argv[0])
			}
			return a.emit(res.Msg, func(w io.Writer) {
				printf(w, "%s\n", res.Msg.GetToken())
				printf(a.stderr, "session of %s (id %d) expires %s\n", us[0].GetUserName(), us[0].GetId(), millis(res.Msg.GetExpiresAt()))
			})
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, 1s to 8760h (default: the service's 30 days)")

	revoke := &cobra.Command{
		Use:   "revoke [--] TOKEN",
		Short: "Revoke a session token (its connections close with 4001)",
		Long:  "Revoke a session token; its connections close with 4001. A token may begin with '-' (one in 64 does): put -- before it, charlactl sessions revoke -- \"$TOKEN\".",
		Args:  args(1, 1, "one TOKEN"),
		RunE: func(c *cobra.Command, argv []string) error {
			ctx, cancel := a.call(c)
			defer cancel()
			res, err := a.clients.Profile.RevokeSession(ctx, connect.NewRequest(&profilev1.RevokeSessionRequest{Token: argv[0]}))
			if err != nil {
				return a.explain(err, "profile", "revoke session")
			}
			return a.emit(res.Msg, func(w io.Writer) { printf(w, "revoked\n") })
		},
	}
	// A token that begins with '-' reads as flags: say how to pass it.
	revoke.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usagef("%w (a TOKEN that begins with '-' goes after --: charlactl sessions revoke -- TOKEN)", err)
	})
	sessions.AddCommand(create, revoke)
	return sessions
}

func (a *app) contactsCmd() *cobra.Command {
	contacts := &cobra.Command{Use: "contacts", Short: "Make two users contacts, or not"}
	add := &cobra.Command{
		Use:   "add USER OTHER",
		Short: "Make two users accepted contacts (both are notified)",
		Args:  args(2, 2, "two USERs (ids or userNames)"),
		RunE: func(c *cobra.Command, argv []string) error {
			ctx, cancel := a.call(c)
			defer cancel()
			us, err := a.resolve(ctx, "add contact", argv)
			if err != nil {
				return err
			}
			res, err := a.clients.Chat.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: us[0].GetId(), OtherUserId: us[1].GetId()}))
			if err != nil {
				return a.explain(err, "chat", "add contact")
			}
			return a.emit(res.Msg, func(w io.Writer) {
				printf(w, "%s and %s are contacts (chat %d)\n", us[0].GetUserName(), us[1].GetUserName(), res.Msg.GetChatId())
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove USER OTHER",
		Short: "End two users' contact (their chat history stays)",
		Args:  args(2, 2, "two USERs (ids or userNames)"),
		RunE: func(c *cobra.Command, argv []string) error {
			ctx, cancel := a.call(c)
			defer cancel()
			us, err := a.resolve(ctx, "remove contact", argv)
			if err != nil {
				return err
			}
			res, err := a.clients.Chat.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: us[0].GetId(), OtherUserId: us[1].GetId()}))
			if err != nil {
				return a.explain(err, "chat", "remove contact")
			}
			return a.emit(res.Msg, func(w io.Writer) {
				printf(w, "%s and %s are no longer contacts\n", us[0].GetUserName(), us[1].GetUserName())
			})
		},
	}
	contacts.AddCommand(add, remove)
	return contacts
}

func (a *app) notificationsCmd() *cobra.Command {
	notifications := &cobra.Command{Use: "notifications", Short: "Send notifications"}
	var typ, title, msg, payload string
	send := &cobra.Command{
		Use:   "send USER --title T [--message M] [--type admin] [--payload JSON]",
		Short: "Store a notification for a user and push it to their connections",
		Args:  args(1, 1, "one USER (id or userName)"),
		RunE: func(c *cobra.Command, argv []string) error {
			req := &notifyv1.CreateNotificationRequest{Type: typ, Title: title, Message: msg}
			if payload != "" {
				var obj map[string]any
				if err := json.Unmarshal([]byte(payload), &obj); err != nil {
					return usagef("--payload: want a JSON object such as {\"url\":\"https://...\"}: %v", err)
				}
				p, err := structpb.NewStruct(obj)
				if err != nil {
					return usagef("--payload: %v", err)
				}
				req.Payload = p
			}
			ctx, cancel := a.call(c)
			defer cancel()
			us, err := a.resolve(ctx, "send notification", argv)
			if err != nil {
				return err
			}
			req.UserId = us[0].GetId()
			res, err := a.clients.Notify.CreateNotification(ctx, connect.NewRequest(req))
			if err != nil {
				return a.explain(err, "notify", "send notification")
			}
			return a.emit(res.Msg, func(w io.Writer) {
				printf(w, "notification %d sent to %s\n", res.Msg.GetNotification().GetId(), us[0].GetUserName())
			})
		},
	}
	send.Flags().StringVar(&typ, "type", "admin", "kind, 1–64 of [a-z0-9_.-]")
	send.Flags().StringVar(&title, "title", "", "title, 1–200 characters")
	send.Flags().StringVar(&msg, "message", "", "message, at most 2000 characters")
	send.Flags().StringVar(&payload, "payload", "", "a JSON object of at most 4 KiB")
	required(send, "title")
	notifications.AddCommand(send)
	return notifications
}

func (a *app) presenceCmd() *cobra.Command {
	presence := &cobra.Command{Use: "presence", Short: "Show who is online"}
	get := &cobra.Command{
		Use:   "get USER...",
		Short: "Show whether users are online and when they were last seen",
		Args:  args(1, -1, "at least one USER (id or userName)"),
		RunE: func(c *cobra.Command, argv []string) error {
			ctx, cancel := a.call(c)
			defer cancel()
			us, err := a.resolve(ctx, "get presence", argv)
			if err != nil {
				return err
			}
			req := &presencev1.GetPresenceRequest{}
			for _, u := range us {
				req.UserIds = append(req.UserIds, u.GetId())
			}
			res, err := a.clients.Presence.GetPresence(ctx, connect.NewRequest(req))
			if err != nil {
				return a.explain(err, "presence", "get presence")
			}
			return a.emit(res.Msg, func(w io.Writer) {
				rows := make([][]string, 0, len(us))
				for i, p := range res.Msg.GetPresences() {
					rows = append(rows, []string{strconv.FormatInt(p.GetUserId(), 10), us[i].GetUserName(), strconv.FormatBool(p.GetIsOnline()), millis(p.GetLastSeen())})
				}
				table(w, "ID USERNAME ONLINE LAST_SEEN", rows)
			})
		},
	}
	presence.AddCommand(get)
	return presence
}

func (a *app) countriesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "countries",
		Short: "List the ISO 3166-1 countries (ids for profiles)",
		Args:  args(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := a.call(c)
			defer cancel()
			res, err := a.clients.Profile.ListCountries(ctx, connect.NewRequest(&profilev1.ListCountriesRequest{}))
			if err != nil {
				return a.explain(err, "profile", "list countries")
			}
			return a.emit(res.Msg, func(w io.Writer) {
				rows := make([][]string, 0, len(res.Msg.GetCountries()))
				for _, c := range res.Msg.GetCountries() {
					rows = append(rows, []string{strconv.Itoa(int(c.GetId())), c.GetName()})
				}
				table(w, "ID NAME", rows)
			})
		},
	}
}
