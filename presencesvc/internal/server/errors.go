package server

import (
	"context"

	"github.com/charla/charla/shared/svcerr"
)

// toConnect maps any error to the Connect error a client sees; it is the only place that
// does (shared/svcerr: domain errors keep their client-safe message, a peer or the
// database out of reach is unavailable, everything else is logged and answered without
// internals).
func (s *Server) toConnect(ctx context.Context, op string, err error) error {
	return svcerr.Mapper{Service: "presence", Log: s.log}.ToConnect(ctx, op, err)
}
