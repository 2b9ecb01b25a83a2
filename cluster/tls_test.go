package cluster

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const ioTimeout = 5 * time.Second

// serveOnce accepts one connection on 127.0.0.1 with cfg, answers the line
// "ping" with "pong ping" and reports the server side's error (nil when the
// exchange worked). The listener and goroutine are gone when the test ends.
func serveOnce(t *testing.T, cfg *tls.Config) (addr string, result <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		res <- func() error {
			conn, err := ln.Accept()
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(ioTimeout))
			tc := tls.Server(conn, cfg)
			if err := tc.Handshake(); err != nil {
				return err
			}
			line, err := bufio.NewReader(tc).ReadString('\n')
			if err != nil {
				return err
			}
			_, err = io.WriteString(tc, "pong "+line)
			return err
		}()
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-done:
		case <-time.After(ioTimeout):
			t.Error("server goroutine did not stop")
		}
	})
	return ln.Addr().String(), res
}

func serverResult(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(ioTimeout):
		t.Fatal("server gave no result")
		return nil
	}
}

// ping dials addr with cfg, sends "ping" and returns the reply line.
func ping(addr string, cfg *tls.Config) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

// devNode issues a node certificate from ca for 127.0.0.1 and returns its identity.
func devNode(t *testing.T, ca *CA, name string) *TLS {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(name, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewTLS(ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// expiredPair is a key pair from ca that expired a day ago; NewTLS refuses
// it, so it is built directly to play a misbehaving peer.
func expiredPair(t *testing.T, ca *CA) tls.Certificate {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := ca.issue("stale", []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// sendAlways makes a client present pair whatever CAs the server names, as
// an attacker would; Go's client otherwise sends no certificate at all when
// its issuer is not among the server's acceptable CAs.
func sendAlways(cfg *tls.Config, pair tls.Certificate) *tls.Config {
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	return cfg
}

func TestClientWithCertificateFromTheClusterCAExchangesBytes(t *testing.T) {
	defer goleak.VerifyNone(t)
	server, ca, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	client := devNode(t, ca, "driver")
	addr, res := serveOnce(t, server.ServerConfig())
	reply, err := ping(addr, client.ClientConfig())
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if reply != "pong ping\n" {
		t.Fatalf("reply %q, want %q", reply, "pong ping\n")
	}
	if err := serverResult(t, res); err != nil {
		t.Fatalf("server: %v", err)
	}
}

func TestServerRefusesClient(t *testing.T) {
	defer goleak.VerifyNone(t)
	server, ca, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	_, foreignCA, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	foreign := devNode(t, foreignCA, "intruder")
	for _, tc := range []struct {
		name       string
		client     *tls.Config
		serverSays string
	}{
		{"a client with no certificate", func() *tls.Config {
			cfg := devNode(t, ca, "driver").ClientConfig()
			cfg.Certificates = nil
			return cfg
		}(), "client didn't provide a certificate"},
		{"a client whose certificate is from a foreign CA",
			sendAlways(devNode(t, ca, "driver").ClientConfig(), foreign.cert), "unknown authority"},
		{"a client whose certificate expired",
			sendAlways(devNode(t, ca, "driver").ClientConfig(), expiredPair(t, ca)), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, res := serveOnce(t, server.ServerConfig())
			reply, err := ping(addr, tc.client)
			if err == nil {
				t.Fatalf("client got reply %q, want an error", reply)
			}
			serr := serverResult(t, res)
			if serr == nil || !strings.Contains(serr.Error(), tc.serverSays) {
				t.Fatalf("server error %v, want one containing %q (client: %v)", serr, tc.serverSays, err)
			}
		})
	}
}

func TestPlainTextClientGetsNoApplicationData(t *testing.T) {
	defer goleak.VerifyNone(t)
	server, _, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	addr, res := serveOnce(t, server.ServerConfig())
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		t.Fatalf("server kept a plain-text connection open (read %q)", got)
	}
	if strings.Contains(string(got), "pong") {
		t.Fatalf("plain-text client read application data %q", got)
	}
	if serr := serverResult(t, res); serr == nil || !strings.Contains(serr.Error(), "does not look like a TLS handshake") {
		t.Fatalf("server error %v, want a refused handshake", serr)
	}
}

func TestClientRefusesServer(t *testing.T) {
	defer goleak.VerifyNone(t)
	_, ca, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	client := devNode(t, ca, "driver")
	foreign, _, err := DevTLS()
	if err != nil {
		t.Fatal(err)
	}
	expired := devNode(t, ca, "exec-0").ServerConfig()
	expired.Certificates = []tls.Certificate{expiredPair(t, ca)}
	for _, tc := range []struct {
		name       string
		server     *tls.Config
		clientSays string
	}{
		{"a server whose certificate is from a foreign CA", foreign.ServerConfig(), "not signed by the CA"},
		{"a server whose certificate expired", expired, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, res := serveOnce(t, tc.server)
			reply, err := ping(addr, client.ClientConfig())
			if err == nil || !strings.Contains(err.Error(), tc.clientSays) {
				t.Fatalf("client error %v (reply %q), want one containing %q", err, reply, tc.clientSays)
			}
			if serr := serverResult(t, res); serr == nil {
				t.Fatal("server saw a completed exchange")
			}
		})
	}
}

// writeNode writes ca.pem and node.pem/node-key.pem into a new directory.
func writeNode(t *testing.T) (*CA, string, TLSFiles) {
	t.Helper()
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteNode(dir, "node", []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return ca, dir, TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "node.pem"), Key: filepath.Join(dir, "node-key.pem")}
}

func TestLoadSaysWhichFileIsWrongAndWhy(t *testing.T) {
	_, dir, files := writeNode(t)
	if _, err := files.Load(); err != nil {
		t.Fatalf("load written files: %v", err)
	}
	other, err := NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := other.Issue("other", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, foreignKey, err := other.Issue("node", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	nb, na := time.Now().Add(-48*time.Hour).Truncate(time.Second), time.Now().Add(-24*time.Hour).Truncate(time.Second)
	staleCert, staleKey, err := ca.issue("node", nil, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	fb, fa := time.Now().Add(24*time.Hour).Truncate(time.Second), time.Now().Add(48*time.Hour).Truncate(time.Second)
	futureCert, futureKey, err := ca.issue("node", nil, fb, fa)
	if err != nil {
		t.Fatal(err)
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }

	for _, tc := range []struct {
		name  string
		files TLSFiles
		write map[string][]byte // file -> new contents
		want  []string
	}{
		{name: "a missing file is named",
			files: TLSFiles{CA: files.CA, Cert: filepath.Join(dir, "nope.pem"), Key: files.Key},
			want:  []string{"certificate file " + filepath.Join(dir, "nope.pem") + " is missing"}},
		{name: "a certificate file that is not PEM",
			write: map[string][]byte{files.Cert: []byte("garbage")},
			want:  []string{"certificate file " + files.Cert, "not PEM"}},
		{name: "a CA file that is not PEM",
			write: map[string][]byte{files.CA: []byte("garbage")},
			want:  []string{"CA file " + files.CA, "not PEM"}},
		{name: "a key file that is not PEM",
			write: map[string][]byte{files.Key: []byte("garbage")},
			want:  []string{"key file " + files.Key, "not PEM"}},
		{name: "a key that does not match the certificate",
			write: map[string][]byte{files.Key: otherKey},
			want:  []string{"key file " + files.Key, "does not match", files.Cert}},
		{name: "an expired certificate names its dates",
			write: map[string][]byte{files.Cert: staleCert, files.Key: staleKey},
			want:  []string{"certificate file " + files.Cert, "expired", rfc(nb), rfc(na)}},
		{name: "a certificate not valid yet names its dates",
			write: map[string][]byte{files.Cert: futureCert, files.Key: futureKey},
			want:  []string{"certificate file " + files.Cert, "not valid yet", rfc(fb), rfc(fa)}},
		{name: "a certificate from another CA",
			write: map[string][]byte{files.Cert: foreignCert, files.Key: foreignKey},
			want:  []string{"certificate file " + files.Cert, "not signed by the CA", `"other CA"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.files
			if f == (TLSFiles{}) {
				f = files
			}
			for path, b := range tc.write {
				old, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.WriteFile(path, old, 0o600) })
			}
			_, err := f.Load()
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewTLSNamesThePart(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("node", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		ca, cert, key []byte
		want          string
	}{
		{"CA", []byte("x"), certPEM, keyPEM, "cluster: CA: not PEM"},
		{"certificate", ca.CertPEM, []byte("x"), keyPEM, "cluster: certificate: not PEM"},
		{"key", ca.CertPEM, certPEM, []byte("x"), "cluster: key: not PEM"},
		{"node certificate as CA", certPEM, certPEM, keyPEM, "cluster: CA: certificate \"node\" is not a CA"},
	} {
		if _, err := NewTLS(tc.ca, tc.cert, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestWriteFilesLoadCARoundTripAndKeyModes(t *testing.T) {
	ca, dir, files := writeNode(t)
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !publicKeysEqual(loaded.Key.Public(), ca.Key.Public()) || string(loaded.CertPEM) != string(ca.CertPEM) {
		t.Fatal("loaded CA differs from the written one")
	}
	// A certificate issued by the loaded CA is trusted by a node of the original.
	certPEM, keyPEM, err := loaded.Issue("later", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTLS(ca.CertPEM, certPEM, keyPEM); err != nil {
		t.Fatalf("certificate from loaded CA: %v", err)
	}

	// Rewriting over a readable key file still leaves it 0600.
	if err := os.Chmod(files.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteNode(dir, "node", nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "ca-key.pem"): 0o600,
		files.Key:                        0o600,
		files.CA:                         0o644,
		files.Cert:                       0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("dir holds %d entries, want 4 (no temporary files left)", len(entries))
	}

	empty := t.TempDir()
	if _, err := LoadCA(empty); err == nil || !strings.Contains(err.Error(), "CA file "+filepath.Join(empty, "ca.pem")+" is missing") {
		t.Errorf("LoadCA of an empty dir: %v", err)
	}
	if err := ca.WriteNode(dir, "ca", nil, time.Hour); err == nil {
		t.Error("WriteNode named ca overwrote the CA")
	}
}

// TestWriteDevClusterNodesTalkByIPWithoutNamingIt loads the written files
// as a driver and an executor would; the executor's certificate names only
// its node name, yet the driver reaches it by IP address.
func TestWriteDevClusterNodesTalkByIPWithoutNamingIt(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := filepath.Join(t.TempDir(), "certs")
	written, err := WriteDevCluster(dir, []string{"driver", "exec-0.sluice-executors"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ca.pem", "ca-key.pem", "driver.pem", "driver-key.pem", "exec-0.sluice-executors.pem", "exec-0.sluice-executors-key.pem"}
	for i := range want {
		want[i] = filepath.Join(dir, want[i])
	}
	if !slices.Equal(written, want) {
		t.Fatalf("written %q, want %q", written, want)
	}
	load := func(name string) *TLS {
		id, err := TLSFiles{CA: want[0], Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}.Load()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	exec := load("exec-0.sluice-executors")
	if got := exec.cert.Leaf.DNSNames; !slices.Equal(got, []string{"exec-0.sluice-executors"}) {
		t.Fatalf("executor certificate names %q", got)
	}
	addr, res := serveOnce(t, exec.ServerConfig())
	if reply, err := ping(addr, load("driver").ClientConfig()); err != nil || reply != "pong ping\n" {
		t.Fatalf("ping: %q, %v", reply, err)
	}
	if err := serverResult(t, res); err != nil {
		t.Fatalf("server: %v", err)
	}

	for _, nodes := range [][]string{nil, {"a", "a"}, {"ca"}, {"../x"}} {
		if _, err := WriteDevCluster(t.TempDir(), nodes, nil, time.Hour); err == nil {
			t.Errorf("WriteDevCluster(%q) succeeded", nodes)
		}
	}
}
