package kafka_test

import (
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/sources/kafka"
)

// The identity names the topics (or the pattern), never how they are
// reached or read: a checkpoint pins it, so a restart on other topics is
// refused while a move to other brokers is not.
func TestIdentityNamesTheTopicsNotTheBrokers(t *testing.T) {
	base := kafka.Config{Name: "orders", Brokers: []string{"127.0.0.1:1"}, Topics: []string{"b", "a"}}
	tests := []struct {
		name string
		edit func(c *kafka.Config)
		want string
	}{
		{"the topics, sorted", func(*kafka.Config) {}, "kafka topics=a,b"},
		{"the topics in another order are the same data", func(c *kafka.Config) { c.Topics = []string{"a", "b"} }, "kafka topics=a,b"},
		{"a topic named twice is named once", func(c *kafka.Config) { c.Topics = []string{"a", "b", "a"} }, "kafka topics=a,b"},
		{"other brokers are the same data", func(c *kafka.Config) { c.Brokers = []string{"10.0.0.7:9092", "10.0.0.8:9092"} }, "kafka topics=a,b"},
		{"another source name is the same data", func(c *kafka.Config) { c.Name = "other" }, "kafka topics=a,b"},
		{"reading options are the same data", func(c *kafka.Config) {
			c.StartingOffsets, c.MaxOffsetsPerBatch, c.MaxOffsetsPerSplit, c.ReadUncommitted = "latest", 10, 5, true
			c.ValueSchema = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
			c.ClientID, c.DialTimeout, c.CommitGroup = "me", time.Second, "g"
		}, "kafka topics=a,b"},
		{"another topic is other data", func(c *kafka.Config) { c.Topics = []string{"a", "c"} }, "kafka topics=a,c"},
		{"one more topic is other data", func(c *kafka.Config) { c.Topics = []string{"a", "b", "c"} }, "kafka topics=a,b,c"},
		{"a pattern is named as written", func(c *kafka.Config) { c.Topics, c.TopicRegex = nil, "^orders-.*$" }, "kafka pattern=^orders-.*$"},
		{"another pattern is other data", func(c *kafka.Config) { c.Topics, c.TopicRegex = nil, "orders-.*" }, "kafka pattern=orders-.*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Topics = slices.Clone(base.Topics)
			tt.edit(&c)
			s, err := kafka.New(c) // New does not contact a broker
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Identity(); got != tt.want {
				t.Fatalf("Identity() = %q; want %q", got, tt.want)
			}
		})
	}
}
