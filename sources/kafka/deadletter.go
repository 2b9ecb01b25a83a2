package kafka

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DeadLetterTopic returns a DeadLetter that produces each bad record, key
// and value unchanged, to topic, with headers naming where it came from
// (sluice-topic, sluice-partition, sluice-offset) and why (sluice-error).
// Each record is produced synchronously, so a batch does not commit before
// its bad records are stored. A re-run of a batch produces them again
// (at-least-once). Close the returned client when the query ends.
func DeadLetterTopic(brokers []string, topic string, opts ...kgo.Opt) (DeadLetter, *kgo.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: dead-letter topic %s: %w", topic, err)
	}
	dl := func(ctx context.Context, r BadRecord) error {
		rec := &kgo.Record{Key: r.Key, Value: r.Value, Headers: []kgo.RecordHeader{
			{Key: "sluice-topic", Value: []byte(r.Topic)},
			{Key: "sluice-partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: "sluice-offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
			{Key: "sluice-error", Value: []byte(fmt.Sprint(r.Err))},
		}}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return fmt.Errorf("dead-letter %s[%d]@%d to topic %s: %w", r.Topic, r.Partition, r.Offset, topic, err)
		}
		return nil
	}
	return dl, cl, nil
}
