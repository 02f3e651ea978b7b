//go:build !race

package apart

// raceEnabled: the test binary has no race detector, nor have the commands.
const raceEnabled = false
