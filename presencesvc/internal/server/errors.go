package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/charla/charla/presencesvc/internal/presence"
	"github.com/charla/charla/shared/sqldb"
)

// errInternal is what clients see of any unexpected failure; the cause is logged.
var errInternal = errors.New("internal error")

// toConnect maps an error to the Connect error clients see. It is the only place that does.
// The database or a peer out of reach (sqldb.IsUnavailable) is unavailable, never internal.
func (s *Server) toConnect(ctx context.Context, op string, err error) error {
	var invalid *presence.InvalidArgumentError
	switch {
	case errors.As(err, &invalid):
		return connect.NewError(connect.CodeInvalidArgument, invalid)
	case errors.Is(err, presence.ErrEdgeNotFound):
		return connect.NewError(connect.CodeNotFound, presence.ErrEdgeNotFound)
	case errors.Is(err, presence.ErrConnectionConflict):
		return connect.NewError(connect.CodeAlreadyExists, presence.ErrConnectionConflict)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case sqldb.IsUnavailable(err):
		s.log.WarnContext(ctx, op+": backing service unavailable", "err", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("presence service temporarily unavailable"))
	}
	s.log.ErrorContext(ctx, op+" failed", "err", err)
	return connect.NewError(connect.CodeInternal, errInternal)
}
