package server_test

import (
	"context"
	"sync"
	"testing"

	"connectrpc.com/connect"
)

// TestConcurrentUpdates replaces whole sections of several profiles at once, several times
// each, and of one profile from several callers: every update succeeds (no deadlock or
// lock error reaches the caller) and each profile ends with one complete version.
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		const users, rounds = 6, 4
		ids := make([]int64, users)
		for i := range ids {
			ids[i] = e.createUser(t).GetId()
		}
		var wg sync.WaitGroup
		errs := make(chan error, users*rounds+rounds)
		for _, id := range ids {
			for r := range rounds {
				wg.Go(func() {
					_, err := e.client.UpdateProfile(context.Background(), connect.NewRequest(fullUpdate(id, 3+r)))
					errs <- err
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent UpdateProfile: %v", err)
			}
		}
		for _, id := range ids {
			cv := e.profile(t, id, id).GetCurriculum()
			n := len(cv.GetEducation())
			if n < 3 || n > 3+rounds-1 || len(cv.GetExperience()) != n || len(cv.GetProjects()) != n || len(cv.GetSkills()) != n {
				t.Fatalf("user %d: sections of different updates mixed: %d education, %d experience, %d projects, %d skills",
					id, n, len(cv.GetExperience()), len(cv.GetProjects()), len(cv.GetSkills()))
			}
		}
	})
}
