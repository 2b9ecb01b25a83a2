package exec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestFuncsAreCopyOnWriteAndOneNameMeansOneRegistration(t *testing.T) {
	batch := func(memory.Allocator, arrow.Record) (arrow.Record, error) { return nil, nil }
	group := func(*GroupCall) (GroupResult, error) { return GroupResult{}, nil }
	a := &Func{Name: "a", At: "x.go:1", Batch: batch}
	g := &Func{Name: "g", At: "x.go:2", Group: group}

	var empty *Funcs
	if _, ok := empty.Batch("a"); ok || empty.Names() != nil {
		t.Fatal("the nil registry should be empty")
	}
	withA, err := empty.With(a)
	if err != nil {
		t.Fatal(err)
	}
	both, err := withA.With(g)
	if err != nil {
		t.Fatal(err)
	}
	if withA.Names() == nil || slices.Contains(withA.Names(), "g") {
		t.Fatalf("With changed its receiver: %q", withA.Names())
	}
	if got := both.Names(); !slices.Equal(got, []string{"a", "g"}) {
		t.Fatalf("names %q", got)
	}
	if _, ok := both.Batch("a"); !ok {
		t.Fatal("batch function a not found")
	}
	if _, ok := both.Group("g"); !ok {
		t.Fatal("group function g not found")
	}
	if _, ok := both.Group("a"); ok {
		t.Fatal("a batch function was found as a group function")
	}
	if _, ok := both.Batch("g"); ok {
		t.Fatal("a group function was found as a batch function")
	}

	// The same registration met again is no clash and adds nothing.
	if m, err := both.Merge(withA); err != nil || m != both {
		t.Fatalf("merging a subset: %p, %v; want the receiver unchanged", m, err)
	}
	if m, err := withA.Merge(both); err != nil || !slices.Equal(m.Names(), []string{"a", "g"}) || len(withA.Names()) != 1 {
		t.Fatalf("merging a superset: %v, %v (receiver %v)", m.Names(), err, withA.Names())
	}

	// Another registration of a name is an error naming it and both places,
	// whichever kind it is.
	for _, other := range []*Func{{Name: "a", At: "y.go:7", Batch: batch}, {Name: "a", At: "y.go:7", Group: group}} {
		_, err := both.With(other)
		if !errors.Is(err, ErrFuncRegisteredTwice) || !strings.Contains(err.Error(), `"a"`) ||
			!strings.Contains(err.Error(), "x.go:1") || !strings.Contains(err.Error(), "y.go:7") {
			t.Errorf("a second registration of a: %v", err)
		}
	}
}
