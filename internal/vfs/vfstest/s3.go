// Package vfstest runs an in-process S3-compatible server (gofakes3 on
// its in-memory backend) for tests of checkpoints on object storage. It is
// imported by tests only.
//
// gofakes3 v1.2.0 honours the preconditions the checkpoint relies on, on
// PutObject, atomically under its backend's lock: If-None-Match: * (the
// put-if-absent of blobfs.Blob.CreateExclusive) and If-Match: <etag> (the
// conditional takeover of an expired lease), answering 412
// PreconditionFailed as S3 does. TestS3HonoursPreconditions in this
// package pins that, so a gofakes3 upgrade that dropped it fails there
// first.
package vfstest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is a fake S3 endpoint on 127.0.0.1 with one bucket.
type S3 struct {
	Bucket string
	srv    *httptest.Server
	be     *s3mem.Backend

	mu       sync.Mutex
	deny     string
	denyOn   bool
	requests map[string]int // by kind: GET, PUT, DELETE, HEAD, LIST, POST
}

// Requests returns how many requests of each kind (LIST, GET, HEAD, PUT,
// DELETE, POST) the server answered so far.
func (s *S3) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// NewS3 starts the server with the bucket created; it stops when the test
// ends.
func NewS3(t testing.TB, bucket string) *S3 {
	t.Helper()
	be := s3mem.New()
	if err := be.CreateBucket(bucket); err != nil {
		t.Fatalf("fake s3: create bucket %s: %v", bucket, err)
	}
	faker := gofakes3.New(be, gofakes3.WithLogger(gofakes3.DiscardLog()))
	s := &S3{Bucket: bucket, be: be}
	s.srv = httptest.NewServer(s.denyWrites(faker.Server()))
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and drops its connections.
func (s *S3) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Endpoint is the server's http://127.0.0.1:port.
func (s *S3) Endpoint() string { return s.srv.URL }

// URL is the location of prefix in the bucket for blobfs.Open: anonymous
// (the fake checks no signature, and no credential lookup is attempted),
// path-style, plain HTTP. extra are more query parameters, "k=v".
func (s *S3) URL(prefix string, extra ...string) string {
	q := url.Values{}
	q.Set("endpoint", s.srv.URL)
	q.Set("region", "us-east-1")
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	q.Set("anonymous", "true")
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		q.Set(k, v)
	}
	return fmt.Sprintf("s3://%s/%s?%s", s.Bucket, strings.Trim(prefix, "/"), q.Encode())
}

// DenyWrites makes every put and delete of a key under prefix fail with
// AccessDenied (403), as a bucket policy without write permission would
// ("" denies every write), until AllowWrites.
func (s *S3) DenyWrites(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny, s.denyOn = prefix, true
}

// AllowWrites undoes DenyWrites.
func (s *S3) AllowWrites() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny, s.denyOn = "", false
}

// Keys lists the bucket's keys under prefix.
func (s *S3) Keys(prefix string) []string {
	res, err := s.be.ListBucket(s.Bucket, &gofakes3.Prefix{HasPrefix: true, Prefix: prefix}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil
	}
	var keys []string
	for _, c := range res.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

// denyWrites answers a put, post or delete of a key under the denied
// prefix with 403 AccessDenied, as S3 does for a principal without write
// permission; reads pass.
func (s *S3) denyWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.Method
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			kind = "LIST"
		}
		s.mu.Lock()
		deny, on := s.deny, s.denyOn
		if s.requests == nil {
			s.requests = map[string]int{}
		}
		s.requests[kind]++
		s.mu.Unlock()
		if on && r.Method != http.MethodGet && r.Method != http.MethodHead {
			key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"+s.Bucket), "/")
			if strings.HasPrefix(key, deny) || r.Method == http.MethodPost {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><Key>%s</Key></Error>`, key)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
