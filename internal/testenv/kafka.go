package testenv

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// KafkaBrokersEnv names the environment variable holding the seed brokers
// (comma-separated host:port) of a real Apache Kafka cluster for tests.
const KafkaBrokersEnv = "SLUICE_KAFKA_BROKERS"

// KafkaBrokers returns the seed brokers of a real Apache Kafka broker, from
// SLUICE_KAFKA_BROKERS. Start one with `make kafka-up` (scripts/kafka up: a
// one-node KRaft broker on 127.0.0.1:19092 where transactions and consumer
// groups work; topics are not auto-created) and export the line it prints:
//
//	eval "export $(scripts/kafka up)"
//	go test ./sources/kafka/ ./sinks/kafka/
//	scripts/kafka down
//
// Tests never start that broker themselves (a test that must stop one
// starts its own: OwnKafka). Kafka tests run against the
// in-process kfake by default and call KafkaBrokers to run the same checks
// also against the real broker, best in a subtest:
//
//	t.Run("apache-kafka", func(t *testing.T) {
//		brokers := testenv.KafkaBrokers(t)
//		...
//	})
//
// When SLUICE_KAFKA_BROKERS is unset the test is skipped, or fails under
// CI=true (see Missing). When it is set but the first broker does not accept
// a TCP connection within 5 s the test fails: the environment asked for a
// broker that is not there (scripts/kafka status tells why).
func KafkaBrokers(t testing.TB) string {
	t.Helper()
	brokers := strings.TrimSpace(os.Getenv(KafkaBrokersEnv))
	if brokers == "" {
		Missing(t, "a real Kafka broker (%s unset; run `make kafka-up` and export the line it prints)", KafkaBrokersEnv)
		return ""
	}
	first := strings.TrimSpace(strings.Split(brokers, ",")[0])
	conn, err := net.DialTimeout("tcp", first, 5*time.Second)
	if err != nil {
		t.Fatalf("%s=%s but %s is not reachable: %v (is the broker up? scripts/kafka status)", KafkaBrokersEnv, brokers, first, err)
	}
	conn.Close()
	return brokers
}

// KafkaSeeds is KafkaBrokers split into the list kgo.SeedBrokers takes.
func KafkaSeeds(t testing.TB) []string {
	t.Helper()
	var seeds []string
	for _, b := range strings.Split(KafkaBrokers(t), ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	return seeds
}
