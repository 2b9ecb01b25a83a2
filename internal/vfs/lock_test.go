package vfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLockIsExclusiveUntilClosed(t *testing.T) {
	impls := []struct {
		name string
		fs   func(t *testing.T) (FS, string)
	}{
		{"OS", func(t *testing.T) (FS, string) { return OS{}, filepath.Join(t.TempDir(), "ckpt", "lock") }},
		{"Mem", func(t *testing.T) (FS, string) { return NewMem(), "/ckpt/lock" }},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			fsys, path := impl.fs(t)
			first, err := fsys.Lock(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = fsys.Lock(path)
			want := fmt.Sprintf("vfs: lock %s: held by pid %d", path, os.Getpid())
			if !errors.Is(err, ErrLocked) || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("second Lock: %v; want ErrLocked starting %q", err, want)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			if err := first.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			again, err := fsys.Lock(path)
			if err != nil {
				t.Fatalf("Lock after Close: %v", err)
			}
			// A lock of another path is independent.
			other, err := fsys.Lock(path + "2")
			if err != nil {
				t.Fatalf("Lock of another path: %v", err)
			}
			other.Close()
			again.Close()
		})
	}
}

func TestMemCrashReleasesLocks(t *testing.T) {
	m := NewMem()
	old, err := m.Lock("/ckpt/lock")
	if err != nil {
		t.Fatal(err)
	}
	m.Crash() // the holder died with the machine
	fresh, err := m.Lock("/ckpt/lock")
	if err != nil {
		t.Fatalf("Lock after Crash: %v", err)
	}
	old.Close() // the dead holder's handle must not release the new holder
	if _, err := m.Lock("/ckpt/lock"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while the new holder holds it: %v; want ErrLocked", err)
	}
	fresh.Close()
	if len(m.Files()) != 0 {
		t.Fatalf("Mem locks wrote files: %v", m.Files())
	}
}

// lockChildEnv makes this test binary a process that takes a lock, says so
// and waits to be killed (TestLockHelperProcess).
const lockChildEnv = "SLUICE_VFS_LOCK_CHILD"

func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv(lockChildEnv)
	if path == "" {
		t.Skip("helper process for TestOSLockDiesWithItsProcess")
	}
	if _, err := (OS{}).Lock(path); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	// Until killed, or until the parent goes away (its end of our stdin
	// closes), so a parent that dies never leaves this process behind.
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestOSLockDiesWithItsProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // closed when this process exits: the child's cue to exit too
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	_, err = OS{}.Lock(path)
	if want := fmt.Sprintf("held by pid %d", cmd.Process.Pid); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Lock while the child holds it: %v; want ErrLocked saying %q", err, want)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to unlock
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := OS{}.Lock(path)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	l.Close()
}

// Open: a path is the OS filesystem; a URL needs the opener its scheme
// registered (blobfs, not linked into this test binary), else an error
// naming the location; a registered one is called with the whole URL.
func TestOpenResolvesPathsAndRegisteredSchemes(t *testing.T) {
	ctx := context.Background()
	if fsys, dir, err := Open(ctx, "/var/ckpt"); err != nil || fsys != (OS{}) || dir != "/var/ckpt" {
		t.Fatalf("Open(path) = %v, %q, %v", fsys, dir, err)
	}
	if _, _, err := Open(ctx, "zz://bucket/ckpt?secret=x"); err == nil || !strings.Contains(err.Error(), "zz://bucket/ckpt") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open of an unregistered scheme: %v; want an error naming the location without its query", err)
	}
	var got string
	RegisterOpener("zz", func(_ context.Context, loc string) (FS, string, error) { got = loc; return NewMem(), "ckpt", nil })
	if _, dir, err := Open(ctx, "zz://bucket/ckpt?a=b"); err != nil || dir != "ckpt" || got != "zz://bucket/ckpt?a=b" {
		t.Fatalf("Open of a registered scheme: %q, %v (opener got %q)", dir, err, got)
	}
}
