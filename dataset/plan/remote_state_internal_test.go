package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/state"
)

// TestATaskServerOpensTheDriversStateBackend: an executor opens a query's
// state directory with the backend the driver's request names, one
// provider per backend and directory, its disk databases under
// StateLocalDir; an unknown backend fails the task as ErrPlan naming it.
func TestATaskServerOpensTheDriversStateBackend(t *testing.T) {
	local := t.TempDir()
	s := &TaskServer{StateLocalDir: local}
	defer s.Close()
	dir := t.TempDir()
	disk, err := s.state(dir, state.BackendDisk)
	if err != nil {
		t.Fatal(err)
	}
	dp, ok := disk.(*state.DiskProvider)
	if !ok || !strings.HasPrefix(dp.LocalDir(), local) {
		t.Fatalf("disk backend: got %T (local dir %v), want a *state.DiskProvider under %s", disk, dp, local)
	}
	mem, err := s.state(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mem.(*state.FileProvider); !ok {
		t.Fatalf("default backend: got %T, want *state.FileProvider", mem)
	}
	if again, _ := s.state(dir, state.BackendDisk); again != disk {
		t.Fatal("a second task of the same query got another disk provider: its warm stores would be lost")
	}
	if _, err := s.state(dir, "tape"); !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), `"tape"`) {
		t.Fatalf("unknown backend: %v, want ErrPlan naming it", err)
	}
}
