package generate

import (
	"math"
	"math/bits"
	"testing"
)

// The fast price must be the spec's round(10^(6u)*100) for the same u.
func TestNexmarkPriceMatchesPow(t *testing.T) {
	const n = 1_000_000
	diff := 0
	for i := range int64(n) {
		r := newNexmarkRand(99, i)
		s := r
		u := float64(s.next()>>11) * 0x1p-53
		want := int64(math.Round(math.Pow(10, 6*u) * 100))
		if got := r.price(); got != want {
			if got-want > 1 || want-got > 1 {
				t.Fatalf("u=%v: price %d, want %d", u, got, want)
			}
			diff++
		}
	}
	// only values within ~1e-12 of a half cent may round the other way
	if diff > 2 {
		t.Errorf("%d of %d prices differ by a cent from math.Pow", diff, n)
	}
}

func TestNexmarkStrAndLetters(t *testing.T) {
	var spaces, chars int
	counts := map[byte]int{}
	for i := range int64(200_000) {
		r := newNexmarkRand(5, i)
		s := r.str(nil, 20, '_')
		if len(s) < 3 || len(s) > 19 {
			t.Fatalf("str(20) of length %d", len(s))
		}
		for _, c := range s {
			if c == '_' {
				spaces++
			} else if c < 'a' || c > 'z' {
				t.Fatalf("str char %q", c)
			}
			chars++
		}
		s = r.str(nil, 20, ' ')
		// all spaces trims to "" (as in Flink)
		if len(s) > 0 && (s[0] == ' ' || s[len(s)-1] == ' ') {
			t.Fatalf("str %q is not trimmed", s)
		}
		for _, c := range r.letters(nil, int(i%40)) {
			if c < 'a' || c > 'z' {
				t.Fatalf("letter %q", c)
			}
			counts[c]++
		}
	}
	if p := float64(spaces) / float64(chars); math.Abs(p-1.0/13) > 0.002 {
		t.Errorf("P(space) = %.4f, want 1/13", p)
	}
	if len(counts) != 26 {
		t.Errorf("%d distinct letters", len(counts))
	}
}

func TestNexmarkChannelURL(t *testing.T) {
	with := 0
	for n := range int64(nexmarkChannels) {
		u := string(nexmarkChannelURL(nil, 1, n))
		if u != string(nexmarkChannelURL(nil, 1, n)) {
			t.Fatal("url is not a function of (seed, n)")
		}
		if i := len("https://www.nexmark.com/"); u[:i] != "https://www.nexmark.com/" {
			t.Fatalf("url %q", u)
		}
		if id := int64(int32(bits.Reverse32(uint32(n)))); len(u) > 0 && contains(u, "&channel_id=") {
			with++
			if id < 0 {
				id = -id
			}
			if !contains(u, "&channel_id="+itoa(id)) {
				t.Fatalf("channel %d url %q", n, u)
			}
		}
	}
	if p := float64(with) / nexmarkChannels; math.Abs(p-0.9) > 0.02 {
		t.Errorf("%.3f of channels have a channel_id, want 0.9", p)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}
