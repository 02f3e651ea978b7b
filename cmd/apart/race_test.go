//go:build race

package apart

// raceEnabled: the test binary has the race detector, so the commands are built with it.
const raceEnabled = true
