package dataset_test

import (
	"bytes"
	"testing"

	"github.com/sluicedata/sluice/dataset/plan"
)

// roundTrip checks that spec encodes to bytes that decode to an equal spec:
// the same EXPLAIN and the same bytes when encoded again.
func roundTrip(t *testing.T, spec *plan.Spec) {
	t.Helper()
	b, err := spec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := plan.DecodeSpec(b)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, b)
	}
	if g, w := got.Explain(), spec.Explain(); g != w {
		t.Fatalf("decoded spec explains as\n%s\nwant\n%s", g, w)
	}
	b2, err := got.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("spec encodes differently after a round trip:\n%s\n%s", b, b2)
	}
}
