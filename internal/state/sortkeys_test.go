package state

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortByKeyIsBytesOrder checks sortByKey against bytes.Compare on keys
// built to defeat a prefix: long shared prefixes, variable lengths, keys
// that are prefixes of others, differences past the 16th varying byte, and
// duplicates.
func TestSortByKeyIsBytesOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := map[string]func() []byte{
		"shared prefix, few varying bytes": func() []byte {
			k := bytes.Repeat([]byte{7}, 25)
			k[9], k[17], k[24] = byte(rng.IntN(3)), byte(rng.IntN(3)), byte(rng.IntN(256))
			return k
		},
		"variable length": func() []byte {
			k := make([]byte, rng.IntN(6))
			for i := range k {
				k[i] = byte(rng.IntN(2))
			}
			return k
		},
		"differ after 16 varying positions": func() []byte {
			k := make([]byte, 40)
			for i := 0; i < 16; i++ {
				k[i] = byte(rng.IntN(2))
			}
			k[39] = byte(rng.IntN(256))
			return k
		},
		"random": func() []byte {
			k := make([]byte, 1+rng.IntN(20))
			for i := range k {
				k[i] = byte(rng.IntN(256))
			}
			return k
		},
	}
	for name, gen := range shapes {
		t.Run(name, func(t *testing.T) {
			for round := 0; round < 50; round++ {
				keys := make([][]byte, 1+rng.IntN(300))
				for i := range keys {
					keys[i] = gen()
				}
				got := slices.Clone(keys)
				sortByKey(got, func(k []byte) []byte { return k })
				want := slices.Clone(keys)
				slices.SortStableFunc(want, bytes.Compare)
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("round %d: position %d is %x, want %x", round, i, got[i], want[i])
					}
				}
			}
		})
	}
}
