package vfstest

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
)

// Contract runs the vfs.FS contract, one table of cases, against the FS
// newFS makes (empty, with the directory to work under); every
// implementation's tests call it: OS and Mem (internal/vfs), Blob on the
// memory and file drivers and on the in-process S3 server
// (internal/vfs/blobfs).
func Contract(t *testing.T, newFS func(t *testing.T) (vfs.FS, string)) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, fsys vfs.FS, root string)
	}{
		{"write, read, list, remove", contractBasic},
		{"create exclusive", contractCreateExclusive},
		{"create exclusive race", contractCreateExclusiveRace},
		{"streaming create", contractCreate},
		{"lock", contractLock},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys, root := newFS(t)
			c.run(t, fsys, root)
		})
	}
}

func contractBasic(t *testing.T, fsys vfs.FS, root string) {
	p := func(rel string) string { return filepath.Join(root, rel) }

	if err := fsys.WriteFileAtomic(p("a/b/1.json"), []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFileAtomic(p("a/2.json"), []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFileAtomic(p("a/2.json"), []byte("two again")); err != nil {
		t.Fatal(err)
	}
	got, err := fsys.ReadFile(p("a/2.json"))
	if err != nil || string(got) != "two again" {
		t.Fatalf("ReadFile after overwrite = %q, %v; want %q", got, err, "two again")
	}
	got[0] = 'X' // the caller owns what it read
	if again, _ := fsys.ReadFile(p("a/2.json")); string(again) != "two again" {
		t.Fatalf("changing a read buffer changed the file: %q", again)
	}

	names, err := fsys.List(p("a"))
	if err != nil || !slices.Equal(names, []string{"2.json", "b"}) {
		t.Fatalf("List(a) = %q, %v; want [2.json b]", names, err)
	}
	if names, err := fsys.List(p("missing")); err != nil || len(names) != 0 {
		t.Fatalf("List(missing) = %q, %v; want empty", names, err)
	}
	if _, err := fsys.ReadFile(p("a/missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v; want fs.ErrNotExist", err)
	}
	if err := fsys.Remove(p("a/missing.json")); err != nil {
		t.Fatalf("Remove(missing) = %v; want nil", err)
	}
	if err := fsys.Remove(p("a/2.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.ReadFile(p("a/2.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile after Remove = %v; want fs.ErrNotExist", err)
	}
	if err := fsys.RemoveAll(p("a")); err != nil {
		t.Fatal(err)
	}
	if names, err := fsys.List(p("a")); err != nil || len(names) != 0 {
		t.Fatalf("List after RemoveAll = %q, %v; want empty", names, err)
	}
	if err := fsys.RemoveAll(p("a")); err != nil {
		t.Fatalf("RemoveAll(missing) = %v; want nil", err)
	}
}

func contractCreateExclusive(t *testing.T, fsys vfs.FS, root string) {
	p := filepath.Join(root, "offsets", "7.json")
	if err := fsys.CreateExclusive(p, []byte("first")); err != nil {
		t.Fatalf("first create: %v", err)
	}
	err := fsys.CreateExclusive(p, []byte("second"))
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "offsets/7.json") {
		t.Fatalf("second create = %v; want fs.ErrExist naming offsets/7.json", err)
	}
	if got, err := fsys.ReadFile(p); err != nil || string(got) != "first" {
		t.Fatalf("after a refused create: %q, %v; want the first content", got, err)
	}
	// A file WriteFileAtomic made is there for CreateExclusive too.
	q := filepath.Join(root, "offsets", "8.json")
	if err := fsys.WriteFileAtomic(q, []byte("w")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.CreateExclusive(q, []byte("c")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("create over a written file = %v; want fs.ErrExist", err)
	}
	if names, err := fsys.List(filepath.Join(root, "offsets")); err != nil || !slices.Equal(names, []string{"7.json", "8.json"}) {
		t.Fatalf("List = %q, %v; want [7.json 8.json] (no temp names)", names, err)
	}
}

func contractCreateExclusiveRace(t *testing.T, fsys vfs.FS, root string) {
	const writers = 8
	for round := range 3 {
		p := filepath.Join(root, "commits", fmt.Sprintf("%d.json", round))
		var wg sync.WaitGroup
		errs := make([]error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = fsys.CreateExclusive(p, []byte(strings.Repeat(fmt.Sprint(i), 1000)))
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both created %s", round, winner, i, p)
			case err == nil:
				winner = i
			case !errors.Is(err, fs.ErrExist):
				t.Fatalf("round %d: writer %d: %v; want fs.ErrExist", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer created %s", round, p)
		}
		got, err := fsys.ReadFile(p)
		if err != nil || string(got) != strings.Repeat(fmt.Sprint(winner), 1000) {
			t.Fatalf("round %d: content %.20q..., %v; want writer %d's", round, got, err, winner)
		}
	}
}

func contractCreate(t *testing.T, fsys vfs.FS, root string) {
	p := filepath.Join(root, "state", "op", "3.snapshot")
	if err := fsys.WriteFileAtomic(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 100 {
		chunk := []byte(strings.Repeat(fmt.Sprint(i%10), 1000))
		want = append(want, chunk...)
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := fsys.ReadFile(p); string(got) != "old" {
		t.Fatalf("before Commit the path reads %.20q; want the old content", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := fsys.ReadFile(p); err != nil || string(got) != string(want) {
		t.Fatalf("after Commit: %d bytes, %v; want %d", len(got), err, len(want))
	}
	if err := f.Abort(); err != nil {
		t.Fatalf("Abort after Commit = %v; want nil", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Write after Commit = %v; want fs.ErrClosed", err)
	}

	// An aborted file leaves the old content, and no stray name.
	g, err := fsys.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("never"))
	if err := g.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, _ := fsys.ReadFile(p); string(got) != string(want) {
		t.Fatalf("after Abort the path changed: %.20q", got)
	}
	if names, err := fsys.List(filepath.Dir(p)); err != nil || !slices.Equal(names, []string{"3.snapshot"}) {
		t.Fatalf("List after Abort = %q, %v; want [3.snapshot]", names, err)
	}
	// A new path aborted never appears.
	h, err := fsys.Create(filepath.Join(root, "state", "op", "4.snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	h.Write([]byte("never"))
	h.Abort()
	if _, err := fsys.ReadFile(filepath.Join(root, "state", "op", "4.snapshot")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an aborted new file reads %v; want fs.ErrNotExist", err)
	}
}

func contractLock(t *testing.T, fsys vfs.FS, root string) {
	p := filepath.Join(root, "lock")
	l, err := fsys.Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Lock(p); !errors.Is(err, vfs.ErrLocked) || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("second Lock = %v; want vfs.ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := fsys.Lock(p)
	if err != nil {
		t.Fatalf("Lock after Close: %v", err)
	}
	l2.Close()
}
