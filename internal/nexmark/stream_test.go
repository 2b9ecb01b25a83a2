package nexmark

import (
	"math"
	"testing"
)

// An executor rebuilds a run from the driver's parameters: every seed a
// --seed flag takes (a uint64) survives the trip.
func TestStreamJobTakesEverySeedTheFlagTakes(t *testing.T) {
	o := Options{Query: "q0", Events: 10, Seed: math.MaxUint64, EventRate: 1000}
	if _, _, err := StreamJob(o.params(t.TempDir(), "count")); err != nil {
		t.Fatalf("seed %d: %v", o.Seed, err)
	}
}
