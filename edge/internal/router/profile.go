package router

import (
	"context"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/frames"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

func handleGetMyProfile(ctx context.Context, r *Router, c Caller, _ []byte) (string, any, error) {
	res, err := r.cfg.Profile.GetProfile(ctx, connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: c.UserID, UserId: c.UserID}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeMyProfileData, frames.ProfileFrom(res.Msg.GetProfile()), nil
}

func handleGetUserProfile(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	o, ferr := frames.ParseObject(payload, "payload")
	if ferr != nil {
		return "", nil, ferr
	}
	userID, ferr := o.UserID("userId", true)
	if ferr != nil {
		return "", nil, ferr
	}
	res, err := r.cfg.Profile.GetProfile(ctx, connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: c.UserID, UserId: userID}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeUserProfileData, frames.ProfileFrom(res.Msg.GetProfile()), nil
}

func handleUpdateMyProfile(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	req, ferr := frames.ParseUpdateProfile(payload, c.UserID)
	if ferr != nil {
		return "", nil, ferr
	}
	res, err := r.cfg.Profile.UpdateProfile(ctx, connect.NewRequest(req))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeMyProfileData, frames.ProfileFrom(res.Msg.GetProfile()), nil
}
