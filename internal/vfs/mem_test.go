package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
)

var errInjected = errors.New("injected")

func TestMemFailAfter(t *testing.T) {
	tests := []struct {
		name string
		n    int
		ok   int // mutating calls that succeed out of 4
	}{
		{"fail after zero fails the next call", 0, 0},
		{"fail after two lets two calls through", 2, 2},
		{"fail after more than the calls made fails nothing", 10, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMem()
			m.FailAfter(tt.n, errInjected)
			calls := []func() error{
				func() error { return m.WriteFileAtomic("/d/1", []byte("1")) },
				func() error { return m.WriteFileAtomic("/d/2", []byte("2")) },
				func() error { return m.Remove("/d/1") },
				func() error { return m.RemoveAll("/d") },
			}
			for i, call := range calls {
				err := call()
				if i < tt.ok && err != nil {
					t.Fatalf("call %d: %v; want success", i+1, err)
				}
				if i >= tt.ok && !errors.Is(err, errInjected) {
					t.Fatalf("call %d: %v; want the injected error", i+1, err)
				}
			}
			if got := m.Mutations(); got != len(calls) {
				t.Fatalf("Mutations() = %d; want %d", got, len(calls))
			}
			if _, err := m.ReadFile("/d/x"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("reads are not mutating calls and never fail by injection: %v", err)
			}
			m.FailAfter(-1, nil)
			if err := m.WriteFileAtomic("/d/3", []byte("3")); err != nil {
				t.Fatalf("after clearing: %v", err)
			}
		})
	}
}

func TestMemFailedWriteNamesPath(t *testing.T) {
	m := NewMem()
	m.FailAfter(0, errInjected)
	err := m.WriteFileAtomic("/ckpt/offsets/3.json", []byte("x"))
	if err == nil || !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "/ckpt/offsets/3.json") {
		t.Fatalf("err = %v; want the injected error naming the path", err)
	}
}

func TestMemCrash(t *testing.T) {
	tests := []struct {
		name        string
		late        bool
		before      string // "" when the path does not exist before the failed write
		wantRunning string // what the process reads after the failed write ("" = missing)
		wantCrashed string // what a restart after Crash reads
	}{
		{"a failed first write leaves nothing", false, "", "", ""},
		{"a failed overwrite leaves the old content", false, "old", "old", "old"},
		{"a late-failed first write is visible until a crash", true, "", "new", ""},
		{"a late-failed overwrite is visible until a crash brings back the old content", true, "old", "new", "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMem()
			if err := m.WriteFileAtomic("/d/kept", []byte("kept")); err != nil {
				t.Fatal(err)
			}
			if tt.before != "" {
				if err := m.WriteFileAtomic("/d/f", []byte(tt.before)); err != nil {
					t.Fatal(err)
				}
			}
			m.FailLate(tt.late)
			m.FailAfter(0, errInjected)
			if err := m.WriteFileAtomic("/d/f", []byte("new")); !errors.Is(err, errInjected) {
				t.Fatalf("write: %v; want injected", err)
			}
			check := func(when, want string) {
				t.Helper()
				got, err := m.ReadFile("/d/f")
				switch {
				case want == "" && !errors.Is(err, fs.ErrNotExist):
					t.Fatalf("%s: read %q, %v; want missing", when, got, err)
				case want != "" && (err != nil || string(got) != want):
					t.Fatalf("%s: read %q, %v; want %q", when, got, err, want)
				}
				if kept, err := m.ReadFile("/d/kept"); err != nil || string(kept) != "kept" {
					t.Fatalf("%s: a durable write was lost: %q, %v", when, kept, err)
				}
			}
			check("before crash", tt.wantRunning)
			m.Crash()
			check("after crash", tt.wantCrashed)
		})
	}
}

func TestMemRemovesAreDurable(t *testing.T) {
	m := NewMem()
	for _, p := range []string{"/d/a", "/d/b", "/e/c"} {
		if err := m.WriteFileAtomic(p, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Remove("/d/a"); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveAll("/e"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if got := m.Files(); !slices.Equal(got, []string{"/d/b"}) {
		t.Fatalf("Files() after crash = %q; want [/d/b]", got)
	}
}

func TestMemCorrupt(t *testing.T) {
	m := NewMem()
	if err := m.WriteFileAtomic("/d/f", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m.Corrupt("/d/f", func(b []byte) []byte { b[0] ^= 0xff; return b[:3] })
	want := []byte{'h' ^ 0xff, 'e', 'l'}
	got, err := m.ReadFile("/d/f")
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("after Corrupt: %q, %v; want %q", got, err, want)
	}
	m.Crash()
	if got, _ := m.ReadFile("/d/f"); !slices.Equal(got, want) {
		t.Fatalf("corruption did not reach the durable copy: %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Corrupt of a missing file did not panic")
		}
	}()
	m.Corrupt("/d/missing", func(b []byte) []byte { return b })
}

func TestMemDirectories(t *testing.T) {
	m := NewMem()
	if err := m.WriteFileAtomic("/d/sub/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFileAtomic("/d/sub", []byte("x")); err == nil {
		t.Fatal("writing a file over a directory succeeded")
	}
	if err := m.WriteFileAtomic("/d/sub/f/g", []byte("x")); err == nil {
		t.Fatal("writing a file below a file succeeded")
	}
	if _, err := m.ReadFile("/d/sub"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(dir) = %v; want a not-a-file error", err)
	}
	if err := m.Remove("/d"); err == nil {
		t.Fatal("Remove of a non-empty directory succeeded")
	}
	if names, err := m.List("/"); err != nil || !slices.Equal(names, []string{"d"}) {
		t.Fatalf("List(/) = %q, %v", names, err)
	}
	if names, err := m.List("/d/sub/"); err != nil || !slices.Equal(names, []string{"f"}) {
		t.Fatalf("List(/d/sub/) = %q, %v", names, err)
	}
	if _, err := m.List("/d/sub/f"); err == nil {
		t.Fatal("List of a file succeeded")
	}
	// A sibling sharing a name prefix is not under the directory.
	if err := m.WriteFileAtomic("/d/subway", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveAll("/d/sub"); err != nil {
		t.Fatal(err)
	}
	if got := m.Files(); !slices.Equal(got, []string{"/d/subway"}) {
		t.Fatalf("Files() = %q; want [/d/subway]", got)
	}
}

func TestMemConcurrent(t *testing.T) {
	m := NewMem()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				p := fmt.Sprintf("/d/%d/%d", g, i)
				if err := m.WriteFileAtomic(p, []byte(p)); err != nil {
					t.Error(err)
					return
				}
				if b, err := m.ReadFile(p); err != nil || string(b) != p {
					t.Errorf("read %s: %q, %v", p, b, err)
					return
				}
				if _, err := m.List("/d"); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := m.Remove(p); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if got := len(m.Files()); got != 8*50 {
		t.Fatalf("%d files; want %d", got, 8*50)
	}
}
