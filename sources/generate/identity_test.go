package generate_test

import (
	"testing"
	"time"

	"github.com/sluicedata/sluice/sources/generate"
)

// identityCase edits a generator config; same says whether the rows (and
// so the identity) stay the same.
type identityCase[C any] struct {
	name string
	edit func(c *C)
	same bool
}

func checkIdentities[C any](t *testing.T, base C, identity func(t *testing.T, c C) string, want string, cases []identityCase[C]) {
	t.Helper()
	if got := identity(t, base); got != want {
		t.Fatalf("Identity() = %q; want %q", got, want)
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.edit(&c)
			got := identity(t, c)
			if tt.same && got != want {
				t.Fatalf("Identity() = %q; want the base's %q (same rows)", got, want)
			}
			if !tt.same && got == want {
				t.Fatalf("Identity() = %q, the base's; want another (other rows)", got)
			}
		})
	}
}

func TestRateIdentity(t *testing.T) {
	base := generate.RateConfig{Name: "r", RowsPerSecond: 10, Seed: 7, StartTime: time.Unix(100, 0)}
	checkIdentities(t, base, func(t *testing.T, c generate.RateConfig) string {
		r, err := generate.NewRate(c)
		if err != nil {
			t.Fatal(err)
		}
		return r.Identity()
	}, "rate rows_per_second=10 seed=7 keys=100", []identityCase[generate.RateConfig]{
		{"the default key count spelled out", func(c *generate.RateConfig) { c.Keys = 100 }, true},
		{"another name, start time, cap or clock", func(c *generate.RateConfig) {
			c.Name, c.StartTime, c.MaxRowsPerBatch, c.Now = "x", time.Unix(200, 0), 5, func() time.Time { return time.Unix(300, 0) }
		}, true},
		{"another seed", func(c *generate.RateConfig) { c.Seed = 8 }, false},
		{"another rate spaces the timestamps differently", func(c *generate.RateConfig) { c.RowsPerSecond = 11 }, false},
		{"another key count", func(c *generate.RateConfig) { c.Keys = 5 }, false},
	})
}

func TestOrdersStreamIdentity(t *testing.T) {
	base := generate.OrdersStreamConfig{Name: "o", Orders: generate.Orders{Seed: 3}, Total: 100}
	checkIdentities(t, base, func(t *testing.T, c generate.OrdersStreamConfig) string {
		o, err := generate.NewOrdersStream(c)
		if err != nil {
			t.Fatal(err)
		}
		return o.Identity()
	}, "orders seed=3 customers=1000 start=2026-11-01T00:00:00Z interval=1s max_delay=0s", []identityCase[generate.OrdersStreamConfig]{
		{"the defaults spelled out", func(c *generate.OrdersStreamConfig) {
			c.Orders.Customers, c.Orders.Interval, c.Orders.Start = 1000, time.Second, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		}, true},
		{"another name, pace, total, cap or start time", func(c *generate.OrdersStreamConfig) {
			c.Name, c.RowsPerSecond, c.Total, c.MaxRowsPerBatch, c.StartTime = "x", 50, 1000, 7, time.Unix(5, 0)
		}, true},
		{"another seed", func(c *generate.OrdersStreamConfig) { c.Orders.Seed = 4 }, false},
		{"another customer count", func(c *generate.OrdersStreamConfig) { c.Orders.Customers = 20 }, false},
		{"another event-time start", func(c *generate.OrdersStreamConfig) { c.Orders.Start = time.Unix(0, 0) }, false},
		{"another interval", func(c *generate.OrdersStreamConfig) { c.Orders.Interval = time.Minute }, false},
		{"another out-of-orderness", func(c *generate.OrdersStreamConfig) { c.Orders.MaxDelay = time.Second }, false},
	})
}

func TestNexmarkStreamIdentity(t *testing.T) {
	type cfg struct {
		generate.NexmarkConfig
		kind string
	}
	base := cfg{generate.NexmarkConfig{Seed: 1, Events: 1000}, "bid"}
	checkIdentities(t, base, func(t *testing.T, c cfg) string {
		s, err := generate.NewNexmarkStream(c.NexmarkConfig, c.kind)
		if err != nil {
			t.Fatal(err)
		}
		return s.Identity()
	}, "nexmark kind=bid seed=1 first_event_id=0 event_rate=1e+07 base_time=2015-07-15T00:00:00Z", []identityCase[cfg]{
		{"the defaults spelled out", func(c *cfg) {
			c.EventRate, c.BaseTime = 10_000_000, time.Date(2015, 7, 15, 0, 0, 0, 0, time.UTC)
		}, true},
		{"another name, event count or cap", func(c *cfg) { c.Name, c.Events, c.MaxEventsPerBatch = "x", 5000, 10 }, true},
		{"another kind", func(c *cfg) { c.kind = "person" }, false},
		{"another seed", func(c *cfg) { c.Seed = 2 }, false},
		{"another first event id", func(c *cfg) { c.FirstEventID = 10 }, false},
		{"another event rate", func(c *cfg) { c.EventRate = 1000 }, false},
		{"another base time", func(c *cfg) { c.BaseTime = time.Unix(0, 0) }, false},
	})
}
