package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicedata/sluice/cluster"
)

// certs runs `sluice certs`: a new cluster CA, a key pair per node name
// and a gossip key, written into one directory.
func certs(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory to write the files into (required; created if missing)")
	nodes := fs.String("nodes", "driver,executor", "node names, comma-separated: one certificate and key each (<name>.pem, <name>-key.pem)")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "DNS names and IPs the certificates are valid for, comma-separated (each node's name is added)")
	valid := fs.Duration("valid", 365*24*time.Hour, "how long the CA and the certificates are valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("certs: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *dir == "" {
		return errors.New("certs: --dir is required")
	}
	caKey := filepath.Join(*dir, "ca-key.pem")
	for _, f := range []string{caKey, filepath.Join(*dir, "gossip.key")} {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("certs: %s exists: --dir %s holds a cluster's key material already, and new files would not work with the nodes that have the old ones; "+
				"to start over, remove the directory %s (then give every node the new files), or write into another --dir", f, *dir, *dir)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("certs: %w", err)
		}
	}
	written, err := cluster.WriteDevCluster(*dir, split(*nodes), split(*hosts), *valid)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	key, err := cluster.NewGossipKey()
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	keyFile := filepath.Join(*dir, "gossip.key")
	if err := cluster.WriteGossipKey(keyFile, key); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	written = append(written, keyFile)
	for _, f := range written {
		fmt.Fprintln(w, "wrote", f)
	}
	fmt.Fprintf(w, "valid until %s for %s; keep %s (the CA key) off the nodes and out of version control\n",
		time.Now().Add(*valid).Format(time.DateOnly), *hosts, caKey)
	return nil
}

// split cuts a comma-separated list, dropping empty items.
func split(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
