package server_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// BenchmarkGetProfile measures GET_USER_PROFILE as the edge makes it: a Connect call over
// HTTP to the server for a profile with 10 items in every section, viewed by a contact
// (so the chat and presence fakes are asked too, and everything is visible). It reports
// the database statements per call as queries/op.
func BenchmarkGetProfile(b *testing.B) {
	for _, backend := range dbtest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			e := newEnv(b, backend)
			owner, viewer := e.createUser(b), e.createUser(b)
			e.update(b, fullUpdate(owner.GetId(), 10))
			e.contacts.set(viewer.GetId(), owner.GetId())
			req := &profilev1.GetProfileRequest{ViewerId: viewer.GetId(), UserId: owner.GetId()}
			ctx := context.Background()
			if _, err := e.client.GetProfile(ctx, connect.NewRequest(req)); err != nil {
				b.Fatal(err)
			}
			e.queries.Reset()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := e.client.GetProfile(ctx, connect.NewRequest(req))
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Msg.GetProfile().GetCurriculum().GetProjects()) != 10 {
					b.Fatal("want 10 projects")
				}
			}
			b.ReportMetric(float64(e.queries.Load())/float64(b.N), "queries/op")
		})
	}
}
