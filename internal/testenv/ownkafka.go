package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// OwnKafkaEnv asks for the tests that start a Kafka broker of their own
// (OwnKafka) when SLUICE_KAFKA_BROKERS is unset: SLUICE_KAFKA_OWN=1.
const OwnKafkaEnv = "SLUICE_KAFKA_OWN"

// Broker is a real Apache Kafka broker a test started for itself
// (scripts/kafka with its own ports and cache directory), so that it may
// stop it and start it again: an outage the shared broker of
// SLUICE_KAFKA_BROKERS, which other tests use at the same time, must never
// see. It is removed (scripts/kafka down) when the test ends.
type Broker struct {
	// Addr is its host:port, for kgo.SeedBrokers.
	Addr string
	t    testing.TB
	env  []string
}

// OwnKafka starts a broker for the test alone. It runs where a real broker
// is expected (SLUICE_KAFKA_BROKERS set, as in CI's Kafka run, or
// SLUICE_KAFKA_OWN=1) and java is installed; elsewhere the test is skipped
// (or fails under CI=true) saying why. The broker's jars come from the
// shared cache (scripts/kafka fetch into $SLUICE_KAFKA_CACHE, default
// .cache/kafka), its data from a temporary directory; its ports are free
// ones, never the shared broker's.
func OwnKafka(t testing.TB) *Broker {
	t.Helper()
	if os.Getenv(KafkaBrokersEnv) == "" && os.Getenv(OwnKafkaEnv) != "1" {
		Missing(t, "a Kafka broker of the test's own: set %s=1 (or %s, as `make kafka-up` prints) to let the test start one with scripts/kafka; it needs java >= 17 (and mvn once)", OwnKafkaEnv, KafkaBrokersEnv)
		return nil
	}
	if _, err := exec.LookPath("java"); err != nil {
		Missing(t, "java, to run a Kafka broker of the test's own (scripts/kafka)")
		return nil
	}
	script := filepath.Join(Root(), "scripts", "kafka")
	shared := os.Getenv("SLUICE_KAFKA_CACHE")
	if shared == "" {
		shared = filepath.Join(Root(), ".cache", "kafka")
	}
	fetch := exec.Command(script, "fetch")
	fetch.Env = append(os.Environ(), "SLUICE_KAFKA_CACHE="+shared)
	if out, err := fetch.CombinedOutput(); err != nil {
		Missing(t, "the Kafka jars (scripts/kafka fetch into %s: %v: %s)", shared, err, out)
		return nil
	}
	cache := filepath.Join(t.TempDir(), "kafka")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(shared, "lib"), filepath.Join(cache, "lib")); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2) // both open at once: never the same port twice
	port, cport := ports[0], ports[1]
	b := &Broker{Addr: "127.0.0.1:" + strconv.Itoa(port), t: t, env: append(os.Environ(), "SLUICE_KAFKA_CACHE="+cache,
		"SLUICE_KAFKA_PORT="+strconv.Itoa(port), "SLUICE_KAFKA_CONTROLLER_PORT="+strconv.Itoa(cport))}
	t.Cleanup(func() { b.run("down") })
	b.run("up")
	return b
}

// Stop stops the broker and keeps its data: the start of an outage. It
// returns its error rather than failing the test, so it may be called off
// the test's goroutine (as from a query's progress callback).
func (b *Broker) Stop() error { return b.try("stop") }

// Start starts the stopped broker again on its data and ports and returns
// once it accepts connections: the end of the outage. Like Stop, it
// returns its error.
func (b *Broker) Start() error { return b.try("start") }

func (b *Broker) run(cmd string) {
	b.t.Helper()
	if err := b.try(cmd); err != nil {
		b.t.Fatal(err)
	}
}

func (b *Broker) try(cmd string) error {
	c := exec.Command(filepath.Join(Root(), "scripts", "kafka"), cmd)
	c.Env = b.env
	began := time.Now()
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/kafka %s (broker %s): %v\n%s", cmd, b.Addr, err, out)
	}
	b.t.Logf("scripts/kafka %s: %s (%s)", cmd, strings.TrimSpace(string(out)), time.Since(began).Round(time.Millisecond))
	return nil
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
