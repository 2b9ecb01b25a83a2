package sourcetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
)

// Read reads splits in order and returns their rows, one JSON object per
// row, releasing every record.
func Read(t testing.TB, mem memory.Allocator, splits []sources.Split) []string {
	t.Helper()
	var rows []string
	for i, sp := range splits {
		err := sp.Read(context.Background(), mem, func(rec arrow.Record) error {
			defer rec.Release()
			var b bytes.Buffer
			if err := array.RecordToJSON(rec, &b); err != nil {
				return err
			}
			rows = append(rows, strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")...)
			return nil
		})
		if err != nil {
			t.Fatalf("read split %d: %v", i, err)
		}
	}
	return rows
}

// CheckRoundTrip checks invariant 1: every split of splits, encoded and
// decoded by each of decoders, reads what the original reads. splits must
// read at least one row, so that the comparison means something.
func CheckRoundTrip(t *testing.T, mem memory.Allocator, splits []sources.Split, decoders ...sources.Stream) {
	t.Helper()
	want := Read(t, mem, splits)
	if len(want) == 0 {
		t.Fatal("the original splits read no row: nothing to compare")
	}
	for _, d := range decoders {
		decoded := make([]sources.Split, len(splits))
		for i, sp := range splits {
			b, err := sp.Encode()
			if err != nil {
				t.Fatalf("encode split %d: %v", i, err)
			}
			if decoded[i], err = d.DecodeSplit(b); err != nil {
				t.Fatalf("decode split %d %s: %v", i, b, err)
			}
			again, err := decoded[i].Encode()
			if err != nil {
				t.Fatalf("encode decoded split %d: %v", i, err)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("split %d encodes to\n%s\nafter a round trip, was\n%s", i, again, b)
			}
			if got, want := decoded[i].Rows(), sp.Rows(); got != want {
				t.Errorf("split %d: decoded Rows %d, original %d", i, got, want)
			}
		}
		got := Read(t, mem, decoded)
		if !slices.Equal(got, want) {
			t.Fatalf("decoded splits read %d rows, originals %d:\n got %.400q\nwant %.400q", len(got), len(want), got, want)
		}
	}
}

// CheckRefused checks invariant 2 on s, a stream of source kind: each case
// derived from good (bytes of a split s made) and each of extra (named
// bytes the caller knows s must refuse) fails with ErrBadSplit naming
// `kind "s.Name()"`.
func CheckRefused(t *testing.T, s sources.Stream, kind string, good []byte, extra map[string][]byte) {
	t.Helper()
	if _, err := s.DecodeSplit(good); err != nil {
		t.Fatalf("the good split does not decode: %v", err)
	}
	cases := map[string][]byte{
		"garbage is refused":                                []byte("garbage"),
		"empty bytes are refused":                           nil,
		"a truncated split is refused":                      good[:len(good)/2],
		"a split followed by more data is refused":          append(slices.Clip(good), " {}"...),
		"a split of another format version is refused":      reenvelope(t, good, func(e map[string]any) { e["v"] = 2 }),
		"a split of another kind of source is refused":      reenvelope(t, good, func(e map[string]any) { e["kind"] = "another-kind" }),
		"a split of another source of this kind is refused": reenvelope(t, good, func(e map[string]any) { e["name"] = s.Name() + "-other" }),
		"an envelope with an unknown field is refused":      reenvelope(t, good, func(e map[string]any) { e["extra"] = 1 }),
		"a split body with an unknown field is refused": reenvelope(t, good, func(e map[string]any) {
			if body, ok := e["split"].(map[string]any); ok {
				body["unknown_field"] = 1
			}
		}),
		"a split body that is not an object is refused": reenvelope(t, good, func(e map[string]any) { e["split"] = []int{1, 2} }),
	}
	for name, b := range extra {
		cases[name] = b
	}
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		b := cases[name]
		t.Run(name, func(t *testing.T) {
			sp, err := decode(s, b)
			if err == nil {
				t.Fatalf("%s decoded to %#v", b, sp)
			}
			if !errors.Is(err, sources.ErrBadSplit) {
				t.Errorf("error %q does not wrap ErrBadSplit", err)
			}
			if who := fmt.Sprintf("%s %q", kind, s.Name()); !strings.Contains(err.Error(), who) {
				t.Errorf("error %q does not name the source %s", err, who)
			}
		})
	}
}

// decode turns a panic into an error the test reports.
func decode(s sources.Stream, b []byte) (sp sources.Split, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("DecodeSplit panicked: %v", r)
		}
	}()
	return s.DecodeSplit(b)
}

// reenvelope rewrites good's envelope, as a JSON object, with edit.
func reenvelope(t *testing.T, good []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var e map[string]any
	d := json.NewDecoder(bytes.NewReader(good))
	d.UseNumber()
	if err := d.Decode(&e); err != nil {
		t.Fatalf("split %s is not a JSON envelope: %v", good, err)
	}
	edit(e)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
