package generate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/generate"
	"github.com/sluicedata/sluice/sources/sourcetest"
)

// splitCase is a generator stream, a second one built from the same config
// (an executor's), and a batch of it.
type splitCase struct {
	name       string
	kind       string
	make       func(t *testing.T) (a, b sources.Stream)
	start, end sources.Offset
	bad        map[string]string // more bodies the stream must refuse
}

// pair returns two streams built by mk, failing t on an error.
func pair[S sources.Stream](t *testing.T, mk func() (S, error)) (sources.Stream, sources.Stream) {
	t.Helper()
	a, err := mk()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mk()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

var splitCases = []splitCase{
	{
		name: "rate splits decode on a second stream with another StartTime, keeping their offsets' time origin",
		kind: "rate",
		make: func(t *testing.T) (sources.Stream, sources.Stream) {
			cfg := generate.RateConfig{RowsPerSecond: 1000, Seed: 9, Keys: 13, StartTime: origin, Now: (&clock{origin}).now}
			n := 0
			return pair(t, func() (*generate.Rate, error) {
				if n++; n == 2 {
					cfg.StartTime = origin.Add(time.Hour) // a defaulted time.Now in another process
				}
				return generate.NewRate(cfg)
			})
		},
		start: sources.Offset(`{"rows":1000,"start_us":1700000000000000}`),
		end:   sources.Offset(`{"rows":71000,"start_us":1700000000000000}`),
		bad: map[string]string{
			"a rate split with a reversed range is refused": `{"from":10,"to":5,"start_us":0}`,
			"a rate split longer than a split is refused":   `{"from":0,"to":70000,"start_us":0}`,
			"a rate split without its range is refused":     `{"start_us":0}`,
		},
	},
	{
		name: "orders splits decode on a second stream built from the same config",
		kind: "orders",
		make: func(t *testing.T) (sources.Stream, sources.Stream) {
			cfg := generate.OrdersStreamConfig{Orders: generate.Orders{Seed: 5, Customers: 10, MaxDelay: time.Minute}, Total: 70000}
			return pair(t, func() (*generate.OrdersStream, error) { return generate.NewOrdersStream(cfg) })
		},
		start: sources.Offset(`{"rows":1000}`),
		end:   sources.Offset(`{"rows":70000}`),
		bad: map[string]string{
			"an orders split past Total is refused":         `{"from":69000,"to":70001}`,
			"an orders split with negative rows is refused": `{"from":-5,"to":5}`,
		},
	},
}

func init() {
	for _, kind := range []string{"person", "auction", "bid"} {
		splitCases = append(splitCases, splitCase{
			name: "nexmark " + kind + " splits decode on a second stream built from the same config",
			kind: "nexmark",
			make: func(t *testing.T) (sources.Stream, sources.Stream) {
				cfg := generate.NexmarkConfig{Seed: 3, FirstEventID: 100, Events: 200_000}
				return pair(t, func() (*generate.NexmarkStream, error) { return generate.NewNexmarkStream(cfg, kind) })
			},
			start: sources.Offset(`{"events":500}`),
			end:   sources.Offset(`{"events":150000}`),
			bad: map[string]string{
				"a nexmark split past Events is refused": `{"from":199000,"to":200001}`,
				"an empty nexmark split is refused":      `{"from":7,"to":7}`,
			},
		})
	}
}

func TestSplitsRoundTripThroughBytes(t *testing.T) {
	for _, c := range splitCases {
		t.Run(c.name, func(t *testing.T) {
			mem := checkedMem(t)
			a, b := c.make(t)
			splits, err := a.Splits(context.Background(), c.start, c.end)
			if err != nil {
				t.Fatal(err)
			}
			if len(splits) < 2 {
				t.Fatalf("%d splits: the case should cover more than one", len(splits))
			}
			sourcetest.CheckRoundTrip(t, mem, splits, a, b)
		})
	}
}

func TestDecodeSplitRefusesBytesItDidNotMake(t *testing.T) {
	for _, c := range splitCases {
		t.Run(c.name, func(t *testing.T) {
			a, _ := c.make(t)
			splits, err := a.Splits(context.Background(), c.start, c.end)
			if err != nil {
				t.Fatal(err)
			}
			good, err := splits[0].Encode()
			if err != nil {
				t.Fatal(err)
			}
			extra := map[string][]byte{}
			for name, body := range c.bad {
				b, err := sources.MarshalSplit(c.kind, a.Name(), jsonBody(body))
				if err != nil {
					t.Fatal(err)
				}
				extra[name] = b
			}
			sourcetest.CheckRefused(t, a, c.kind, good, extra)
		})
	}
}

// jsonBody marshals as itself.
type jsonBody string

func (b jsonBody) MarshalJSON() ([]byte, error) { return []byte(b), nil }

func TestASplitOfAnotherKindOfSourceNamesBoth(t *testing.T) {
	// Same name, different kinds: the envelope's kind, not the name, tells.
	rate, err := generate.NewRate(generate.RateConfig{Name: "events", RowsPerSecond: 10, StartTime: origin, Now: (&clock{origin.Add(time.Minute)}).now})
	if err != nil {
		t.Fatal(err)
	}
	orders, err := generate.NewOrdersStream(generate.OrdersStreamConfig{Name: "events", Total: 100})
	if err != nil {
		t.Fatal(err)
	}
	splits, err := rate.Splits(context.Background(), sources.Offset(`{"rows":0}`), sources.Offset(`{"rows":50}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := splits[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	_, err = orders.DecodeSplit(b)
	if !errors.Is(err, sources.ErrBadSplit) {
		t.Fatalf("orders decoded a rate split: %v", err)
	}
	for _, want := range []string{`orders "events"`, `it is a split of rate "events"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
