package server

import (
	"slices"
	"sync"
)

// userLocks is a fixed set of mutexes a user id hashes to. Holding a user's stripe while
// changing the user and announcing the change keeps the announcements of one user in commit
// order. Several stripes are always taken in ascending order, so batches cannot deadlock.
type userLocks struct {
	stripes [1024]sync.Mutex
}

func (l *userLocks) index(userID int64) int {
	// Fibonacci hashing spreads consecutive ids over the stripes.
	return int((uint64(userID) * 0x9E3779B97F4A7C15) >> (64 - 10))
}

// lock locks the user's stripe and returns its unlock.
func (l *userLocks) lock(userID int64) func() {
	m := &l.stripes[l.index(userID)]
	m.Lock()
	return m.Unlock
}

// lockAll locks the stripes of all users, in ascending order, and returns their unlock.
func (l *userLocks) lockAll(userIDs []int64) func() {
	idx := make([]int, 0, len(userIDs))
	for _, u := range userIDs {
		idx = append(idx, l.index(u))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		l.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			l.stripes[i].Unlock()
		}
	}
}
