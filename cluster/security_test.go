package cluster_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/flight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
)

// callers are the ways a stranger may knock on an executor's Flight port;
// every one must get neither a task run nor a block.
func callers(t *testing.T, foreign *cluster.TLS) map[string]grpc.DialOption {
	return map[string]grpc.DialOption{
		"plain text": grpc.WithTransportCredentials(insecure.NewCredentials()),
		// TLS that trusts any server but presents no certificate.
		"TLS without a client certificate": grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})),
		// A certificate of another CA, sent even though the server does
		// not list its issuer, as an attacker would.
		"a certificate of another CA": grpc.WithTransportCredentials(credentials.NewTLS(func() *tls.Config {
			c := foreign.ClientConfig()
			cert := c.Certificates
			c.Certificates = nil
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert[0], nil }
			c.VerifyConnection = nil
			return c
		}())),
	}
}

func TestStrangersCanNeitherSubmitTasksNorFetchBlocks(t *testing.T) {
	d, exs := startCluster(t, 1)
	foreign, _, err := cluster.DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	// The control: a member's certificate reaches the service, which
	// answers the unknown run.
	conn, err := grpc.NewClient(exs[0].Flight(), grpc.WithTransportCredentials(credentials.NewTLS(secrets[d].id.ClientConfig())))
	if err != nil {
		t.Fatal(err)
	}
	get, err := flight.NewFlightServiceClient(conn).DoGet(context.Background(), &flight.Ticket{Ticket: []byte(`{"run":"r","blocks":[{"node":"x","stage":0,"map":0,"part":0}]}`)})
	if err == nil {
		_, err = get.Recv()
	}
	conn.Close()
	if err == nil || !strings.Contains(err.Error(), "holds no block") {
		t.Fatalf("a member's fetch: err = %v, want the service's answer that it holds no block of run r", err)
	}
	for name, opt := range callers(t, foreign) {
		t.Run(name, func(t *testing.T) {
			conn, err := grpc.NewClient(exs[0].Flight(), opt)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c := flight.NewFlightServiceClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			body, _ := json.Marshal(map[string]any{"run": "r", "driver": d.Name(), "body": []byte(`{}`)})
			stream, err := c.DoAction(ctx, &flight.Action{Type: "task", Body: body})
			if err == nil {
				_, err = stream.Recv()
			}
			if err == nil {
				t.Fatal("a task was accepted")
			}
			get, err := c.DoGet(ctx, &flight.Ticket{Ticket: []byte(`{"run":"r","blocks":[{"node":"x","stage":0,"map":0,"part":0}]}`)})
			if err == nil {
				_, err = get.Recv()
			}
			if err == nil {
				t.Fatal("a block fetch was answered")
			}
			if strings.Contains(err.Error(), "holds no block") {
				t.Fatalf("the request reached the service: %v", err)
			}
			if exs[0].Tasks() != 0 {
				t.Fatalf("the executor ran %d tasks", exs[0].Tasks())
			}
		})
	}
}

func TestAnExecutorWithoutTheGossipKeyCannotJoin(t *testing.T) {
	d, _ := startCluster(t, 0)
	id, _, err := cluster.DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	other, err := cluster.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := dataset.NewTaskServer(dataset.Config{}, noJob)
	_, err = cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: other, TLS: id, JoinTimeout: 500 * time.Millisecond}, srv)
	if err == nil || !strings.Contains(err.Error(), d.Gossip()) || !strings.Contains(err.Error(), "gossip key") {
		t.Fatalf("err = %v, want a refused join naming the seed and the gossip key", err)
	}
	if n := len(d.Executors()); n != 0 {
		t.Fatalf("the driver lists %d executors", n)
	}
	_, err = cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{d.Gossip()}, TLS: id}, srv)
	if err == nil || !strings.Contains(err.Error(), "no gossip key") {
		t.Fatalf("err = %v, want no gossip key refused", err)
	}
	_, err = cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: other}, srv)
	if err == nil || !strings.Contains(err.Error(), "no TLS identity") {
		t.Fatalf("err = %v, want no TLS identity refused", err)
	}
}

func TestNothingListensBeyondLoopbackByDefault(t *testing.T) {
	d, exs := startCluster(t, 1)
	for _, addr := range []string{d.Gossip(), d.Flight(), exs[0].Gossip(), exs[0].Flight()} {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("%s listens beyond loopback", addr)
		}
	}
}

func TestAnExecutorOfAnotherBuildGetsNoWork(t *testing.T) {
	d, _ := startCluster(t, 0)
	srv := dataset.NewTaskServer(dataset.Config{}, noJob)
	e, err := cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: gossipKeyOf(t, d), TLS: secrets[d].id, Fingerprint: "another-build"}, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if nodes, err := d.Nodes(ctx); err == nil {
		t.Fatalf("the driver offers %v for work; the executor's build differs", nodes)
	}
}

func TestAPortInUseOrUnreachableSeedsAreClearErrors(t *testing.T) {
	d, exs := startCluster(t, 1)
	srv := dataset.NewTaskServer(dataset.Config{}, noJob)
	taken := exs[0].Flight()
	_, err := cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: secrets[d].key, TLS: secrets[d].id, Flight: taken}, srv)
	if err == nil || !strings.Contains(err.Error(), taken) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want the Flight address in use named", err)
	}
	_, err = cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{d.Gossip()}, GossipKey: secrets[d].key, TLS: secrets[d].id, Bind: d.Gossip()}, srv)
	if err == nil || !strings.Contains(err.Error(), d.Gossip()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want the gossip address in use named", err)
	}
	_, err = cluster.StartExecutor(context.Background(), cluster.Config{Seeds: []string{"127.0.0.1:1"}, GossipKey: secrets[d].key, TLS: secrets[d].id, JoinTimeout: 300 * time.Millisecond}, srv)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want the unreachable seed named", err)
	}
}

// With ports chosen at run time (the default), an advertised host is what
// the others reach both of a member's ports at: its gossip address too,
// not only its Flight address.
func TestAnAdvertisedHostNamesBothPortsChosenAtRunTime(t *testing.T) {
	id, _, err := cluster.DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	key, err := cluster.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := cluster.StartDriver(context.Background(), cluster.Config{Advertise: "127.0.0.2", GossipKey: key, TLS: id, JoinTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for what, addr := range map[string]string{"gossip": d.Gossip(), "Flight": d.Flight()} {
		if !strings.HasPrefix(addr, "127.0.0.2:") || strings.HasSuffix(addr, ":0") {
			t.Errorf("%s address %s, want the advertised 127.0.0.2 and a bound port", what, addr)
		}
	}
}
