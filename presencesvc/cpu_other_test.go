//go:build !unix

package presencesvc

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
