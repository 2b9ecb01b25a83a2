package cluster

// The cluster's certificate authority and mutual TLS. Every node (driver and
// executors) holds the CA certificate and one node certificate signed by it;
// a node accepts a peer only if the peer's certificate chains to that CA.
// Nothing else is trusted: not the system roots, not a host name.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// clockSkew backdates NotBefore so that a certificate made on one machine is
// already valid on a node whose clock is a little behind.
const clockSkew = 5 * time.Minute

// CA is a cluster certificate authority: the certificate every node trusts
// and the key that signs node certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA makes a self-signed ECDSA P-256 CA named name, valid for validFor.
func NewCA(name string, validFor time.Duration) (*CA, error) {
	if validFor <= 0 {
		return nil, fmt.Errorf("cluster: new CA %q: validity %v is not positive", name, validFor)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster: new CA %q: %w", name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("cluster: new CA %q: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validFor),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// The CA signs node certificates only, never another CA.
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cluster: new CA %q: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster: new CA %q: %w", name, err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der)}, nil
}

// LoadCA reads a CA written by WriteFiles (ca.pem, ca-key.pem) from dir.
func LoadCA(dir string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	certPEM, err := readFile("CA", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile("CA key", keyFile)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA file %s: %w", certFile, err)
	}
	if !certs[0].IsCA {
		return nil, fmt.Errorf("cluster: CA file %s: certificate %q is not a CA", certFile, certs[0].Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA key file %s: %w", keyFile, err)
	}
	if !publicKeysEqual(key.Public(), certs[0].PublicKey) {
		return nil, fmt.Errorf("cluster: CA key file %s: key does not match certificate %s", keyFile, certFile)
	}
	return &CA{Cert: certs[0], Key: key, CertPEM: pemBlock("CERTIFICATE", certs[0].Raw)}, nil
}

// Issue makes a node certificate signed by the CA for the given DNS names and
// IP addresses (hosts, e.g. "127.0.0.1", "localhost", "exec-0.sluice-executors"),
// usable as both server and client certificate, with common name name, valid
// for validFor. It returns the certificate and its key, PEM encoded.
func (ca *CA) Issue(name string, hosts []string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("cluster: issue %q: validity %v is not positive", name, validFor)
	}
	now := time.Now()
	return ca.issue(name, hosts, now.Add(-clockSkew), now.Add(validFor))
}

// issue is Issue with explicit validity dates, so tests can make expired and
// not-yet-valid certificates.
func (ca *CA) issue(name string, hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: name},
		NotBefore: notBefore,
		NotAfter:  notAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
		// Every node both serves (executor Flight server) and dials (driver,
		// shuffle fetches), so one certificate carries both usages.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case h != "":
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		default:
			return nil, nil, fmt.Errorf("cluster: issue %q: empty host", name)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: issue %q: %w", name, err)
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, nil, fmt.Errorf("cluster: issue %q: %w", name, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: issue %q: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: issue %q: %w", name, err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
}

// WriteFiles writes ca.pem and ca-key.pem (mode 0600) into dir, replacing
// files of those names.
func (ca *CA) WriteFiles(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("cluster: write CA into %s: %w", dir, err)
	}
	if err := writeFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "ca-key.pem"), pemBlock("PRIVATE KEY", keyDER), 0o600)
}

// WriteNode issues a certificate for node name (see Issue) and writes it as
// <name>.pem and <name>-key.pem (mode 0600) into dir: the files a user mounts
// as a Kubernetes Secret.
func (ca *CA) WriteNode(dir, name string, hosts []string, validFor time.Duration) error {
	if err := checkNodeName(name); err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.Issue(name, hosts, validFor)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, name+".pem"), certPEM, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+"-key.pem"), keyPEM, 0o600)
}

// WriteDevCluster writes a new CA and one certificate per node name into dir
// (each valid for hosts plus the node name), for tests and first use, and
// returns the paths written. The CA key stays in dir: whoever holds it can
// add nodes to the cluster.
func WriteDevCluster(dir string, nodes []string, hosts []string, validFor time.Duration) ([]string, error) {
	if len(nodes) == 0 {
		return nil, errors.New("cluster: write dev cluster: no node names")
	}
	for i, n := range nodes {
		if err := checkNodeName(n); err != nil {
			return nil, err
		}
		if slices.Contains(nodes[:i], n) {
			return nil, fmt.Errorf("cluster: node name %q given twice", n)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: write dev cluster: %w", err)
	}
	ca, err := NewCA("sluice cluster CA", validFor)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(dir); err != nil {
		return nil, err
	}
	written := []string{filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")}
	for _, n := range nodes {
		if err := ca.WriteNode(dir, n, append(slices.Clone(hosts), n), validFor); err != nil {
			return written, err
		}
		written = append(written, filepath.Join(dir, n+".pem"), filepath.Join(dir, n+"-key.pem"))
	}
	return written, nil
}

// checkNodeName refuses names that would not make one plain file name or
// would overwrite the CA's files.
func checkNodeName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || name == "ca" || name == "ca-key" {
		return fmt.Errorf("cluster: node name %q is not usable as a file name", name)
	}
	return nil
}

// TLSFiles names a node's PEM files: the cluster CA, its certificate and key.
type TLSFiles struct {
	CA, Cert, Key string
}

// Load reads the files and returns the node's TLS identity. Every error names
// the file and what is wrong with it.
func (f TLSFiles) Load() (*TLS, error) {
	caPEM, err := readFile("CA", f.CA)
	if err != nil {
		return nil, err
	}
	certPEM, err := readFile("certificate", f.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile("key", f.Key)
	if err != nil {
		return nil, err
	}
	return newTLS(caPEM, certPEM, keyPEM, time.Now(),
		"CA file "+f.CA, "certificate file "+f.Cert, "key file "+f.Key)
}

// TLS is a node's identity in the cluster: its certificate and key, and the
// CA it trusts.
type TLS struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// NewTLS builds a node's identity from PEM bytes, with the same checks as
// TLSFiles.Load.
func NewTLS(caPEM, certPEM, keyPEM []byte) (*TLS, error) {
	return newTLS(caPEM, certPEM, keyPEM, time.Now(), "CA", "certificate", "key")
}

// newTLS checks that the CA and certificate are valid at now, that the key
// belongs to the certificate and that the certificate chains to the CA; the
// names say where each PEM came from in errors.
func newTLS(caPEM, certPEM, keyPEM []byte, now time.Time, caName, certName, keyName string) (*TLS, error) {
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", caName, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		if !c.IsCA {
			return nil, fmt.Errorf("cluster: %s: certificate %q is not a CA", caName, c.Subject.CommonName)
		}
		if err := checkValidity(c, now); err != nil {
			return nil, fmt.Errorf("cluster: %s: %w", caName, err)
		}
		pool.AddCert(c)
	}
	chain, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", certName, err)
	}
	leaf := chain[0]
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", keyName, err)
	}
	if !publicKeysEqual(key.Public(), leaf.PublicKey) {
		return nil, fmt.Errorf("cluster: %s: key does not match the %s (%q)", keyName, certName, leaf.Subject.CommonName)
	}
	if err := checkValidity(leaf, now); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", certName, err)
	}
	// Verify both usages: the same certificate serves and dials.
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if err := verifyChain(chain, pool, usage, now); err != nil {
			return nil, fmt.Errorf("cluster: %s: %w", certName, err)
		}
	}
	t := &TLS{pool: pool, cert: tls.Certificate{PrivateKey: key, Leaf: leaf}}
	for _, c := range chain {
		t.cert.Certificate = append(t.cert.Certificate, c.Raw)
	}
	return t, nil
}

// ServerConfig accepts only clients that present a certificate signed by the
// cluster CA; TLS 1.3 only.
func (t *TLS) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    t.pool,
	}
}

// ClientConfig presents the node certificate and accepts only servers whose
// certificate chains to the cluster CA; TLS 1.3 only.
//
// The server's host name is not checked: nodes dial each other by IP address
// and by addresses learned through gossip, which a certificate made at deploy
// time cannot list. Go's default verification always checks the name, so it
// is turned off (InsecureSkipVerify) and VerifyConnection does the rest of it
// itself: the full chain to the CA pool, server-auth usage and the validity
// dates. VerifyConnection, unlike VerifyPeerCertificate, also runs on resumed
// sessions. Trust is therefore "holds a certificate from this cluster's CA",
// which is what membership means here.
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{t.cert},
		RootCAs:            t.pool,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("cluster: server sent no certificate")
			}
			if err := verifyChain(cs.PeerCertificates, t.pool, x509.ExtKeyUsageServerAuth, time.Now()); err != nil {
				return fmt.Errorf("cluster: server certificate %q: %w", cs.PeerCertificates[0].Subject.CommonName, err)
			}
			return nil
		},
	}
}

// DevTLS makes a throwaway CA and one certificate for 127.0.0.1 and
// localhost, valid for 24 hours: for tests, first use and the embedded demo.
func DevTLS() (*TLS, *CA, error) {
	const validFor = 24 * time.Hour
	ca, err := NewCA("sluice dev CA", validFor)
	if err != nil {
		return nil, nil, err
	}
	certPEM, keyPEM, err := ca.Issue("localhost", []string{"127.0.0.1", "localhost"}, validFor)
	if err != nil {
		return nil, nil, err
	}
	t, err := NewTLS(ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	return t, ca, nil
}

// verifyChain checks that chain[0] chains to a root in pool, through the rest
// of chain, for usage, at now. The error says the certificate is not signed by
// the CA when that is the reason.
func verifyChain(chain []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if uerr := (x509.UnknownAuthorityError{}); errors.As(err, &uerr) {
		return fmt.Errorf("not signed by the CA (issuer %q): %w", chain[0].Issuer.CommonName, err)
	}
	if err != nil {
		return fmt.Errorf("does not verify against the CA: %w", err)
	}
	return nil
}

func checkValidity(c *x509.Certificate, now time.Time) error {
	dates := fmt.Sprintf("valid from %s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("certificate %q expired (%s)", c.Subject.CommonName, dates)
	case now.Before(c.NotBefore):
		return fmt.Errorf("certificate %q is not valid yet (%s)", c.Subject.CommonName, dates)
	}
	return nil
}

// parseCerts returns every CERTIFICATE block in b, in order; at least one.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("not PEM: no CERTIFICATE block")
	}
	return certs, nil
}

// parseKey reads the first private key block in b: PKCS #8 as written here,
// or the older SEC 1 and PKCS #1 forms other tools (openssl, cfssl) write.
func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("not PEM: no PRIVATE KEY block")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s block: key type %T cannot sign", block.Type, key)
		}
		return s, nil
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// readFile reads the what file at path.
func readFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster: %s file %s is missing", what, path)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return b, nil
}

// writeFile replaces path with b through a synced temporary file, so a crash
// leaves the old file or the new one, never a torn key; the temporary file is
// made 0600, so a key is never readable by others, not even briefly.
func writeFile(path string, b []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
			err = fmt.Errorf("cluster: write %s: %w", path, err)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), perm); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
