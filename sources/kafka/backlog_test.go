package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/kafka"
)

// Backlog reports, per partition, what a rate-limited batch left behind,
// from the offsets Latest listed: it sends no request of its own.
func TestBacklogIsWhatTheRateLimitLeftPerPartitionWithoutAskingTheBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var lists atomic.Int64
	c.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		lists.Add(1)
		return nil, nil, false
	})
	b := newBackend(t, "kfake", c.ListenAddrs())
	topic := b.topic(t, "lag", 2)
	for i := range 30 {
		b.produce(t, rec(topic, 0, fmt.Sprint(i)))
	}
	for i := range 10 {
		b.produce(t, rec(topic, 1, fmt.Sprint(i)))
	}
	s := newSource(t, b, kafka.Config{Topics: []string{topic}, MaxOffsetsPerBatch: 8})
	var _ sources.Backlog = s
	ctx := context.Background()
	start := initial(t, s)
	end, err := s.Latest(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	before := lists.Load()
	latest, lag, per, err := s.Backlog(ctx, end)
	if err != nil {
		t.Fatal(err)
	}
	if n := lists.Load() - before; n != 0 {
		t.Errorf("Backlog sent %d ListOffsets requests after Latest; want 0", n)
	}
	// 40 offsets, 8 taken: spread 6 and 2 by lag (30:10).
	if lag != 32 {
		t.Errorf("lag %d; want 32", lag)
	}
	if want := map[string]int64{topic + "/0": 24, topic + "/1": 8}; fmt.Sprint(per) != fmt.Sprint(want) {
		t.Errorf("per partition %v; want %v", per, want)
	}
	var got struct {
		T map[string]map[string]int64 `json:"t"`
	}
	if err := json.Unmarshal(latest, &got); err != nil {
		t.Fatalf("latest %s: %v", latest, err)
	}
	if got.T[topic]["0"] != 30 || got.T[topic]["1"] != 10 {
		t.Errorf("latest %s; want partition 0 at 30 and 1 at 10", latest)
	}
	// Caught up: no lag.
	for range 10 {
		start = end
		if end, err = s.Latest(ctx, start); err != nil {
			t.Fatal(err)
		}
	}
	if _, lag, per, err = s.Backlog(ctx, end); err != nil || lag != 0 || per[topic+"/0"] != 0 || per[topic+"/1"] != 0 {
		t.Errorf("caught up: lag %d %v (%v); want 0 in both partitions", lag, per, err)
	}
	// A source that has not run Latest in this process asks the brokers.
	fresh := newSource(t, b, kafka.Config{Topics: []string{topic}})
	if _, lag, _, err := fresh.Backlog(ctx, start); err != nil || lag != 0 {
		t.Errorf("a fresh source: lag %d (%v); want 0", lag, err)
	}
}
