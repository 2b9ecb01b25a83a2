package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
)

// NewGossipKey returns a fresh 32-byte gossip key (AES-256). Files hold it
// base64-encoded (base64.StdEncoding); LoadGossipKey reads that form.
func NewGossipKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("new gossip key: %w", err)
	}
	return key, nil
}

// LoadGossipKey reads a base64 gossip key from path. Surrounding white space
// (a trailing newline from `echo`) is ignored.
func LoadGossipKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load gossip key: %w", err)
	}
	text := bytes.TrimSpace(b)
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(key, text)
	if err != nil {
		return nil, fmt.Errorf("load gossip key %s: not base64: %w", path, err)
	}
	key = key[:n]
	if err := checkGossipKey(key); err != nil {
		return nil, fmt.Errorf("load gossip key %s: %w", path, err)
	}
	return key, nil
}

// checkGossipKey accepts the AES key sizes memberlist's keyring accepts.
func checkGossipKey(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	case 0:
		return fmt.Errorf("gossip key is empty (want 16, 24 or 32 bytes; cluster.NewGossipKey makes one)")
	default:
		return fmt.Errorf("gossip key is %d bytes, want 16, 24 or 32", len(key))
	}
}

// WriteGossipKey writes key base64-encoded to path (mode 0600), the form
// LoadGossipKey reads and a Kubernetes Secret mounts.
func WriteGossipKey(path string, key []byte) error {
	if err := checkGossipKey(key); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write gossip key: %w", err)
	}
	return nil
}
