package sources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// SplitFormat is the version of the envelope MarshalSplit writes. A reader
// refuses any other: the driver and its executors run the same build.
const SplitFormat = 1

// envelope is the JSON every split of this repository's streams encodes to:
//
//	{"v":1,"kind":"kafka","name":"orders","split":{"topic":"orders","partition":0,"start":10,"end":20}}
//
// JSON because a split is a few numbers and names, encoded once per split
// per batch, and an operator reading a task in a log or a test failure sees
// what it reads. Kind and name let a stream refuse another source's split
// by saying whose it is, rather than by misreading its body.
type envelope struct {
	V     int             `json:"v"`
	Kind  string          `json:"kind"`
	Name  string          `json:"name"`
	Split json.RawMessage `json:"split"`
}

// MarshalSplit wraps body, a split's plain data, in the envelope of source
// kind (e.g. "kafka") and name (Stream.Name).
func MarshalSplit(kind, name string, body any) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s %q: encode split: %w", kind, name, err)
	}
	return json.Marshal(envelope{V: SplitFormat, Kind: kind, Name: name, Split: raw})
}

// UnmarshalSplit checks that b is an envelope MarshalSplit wrote for source
// kind and name and decodes its body into body, refusing unknown fields
// and trailing data. Its errors wrap ErrBadSplit and name the source.
func UnmarshalSplit(b []byte, kind, name string, body any) error {
	var e envelope
	err := strictJSON(b, &e)
	if err == nil && e.Kind == "" {
		err = errors.New("no kind")
	}
	if err != nil {
		return BadSplitf(kind, name, "%s is not a split envelope: %v", quote(b), err)
	}
	if e.Kind != kind || e.Name != name {
		return BadSplitf(kind, name, "it is a split of %s %q", e.Kind, e.Name)
	}
	if e.V != SplitFormat {
		return BadSplitf(kind, name, "split format %d, this build reads %d", e.V, SplitFormat)
	}
	if err := strictJSON(e.Split, body); err != nil {
		return BadSplitf(kind, name, "body %s: %v", quote(e.Split), err)
	}
	return nil
}

// BadSplitf returns an error wrapping ErrBadSplit, naming source kind and
// name, for a split that decoded but is not one the source makes.
func BadSplitf(kind, name, format string, args ...any) error {
	return fmt.Errorf("%s %q: decode split: %s: %w", kind, name, fmt.Sprintf(format, args...), ErrBadSplit)
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// quote shows at most 64 bytes of b: enough to recognise what was sent.
func quote(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
