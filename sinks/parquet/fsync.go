package parquet

import (
	"fmt"
	"os"
)

// syncDir fsyncs a directory so the names it holds survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("parquet sink: fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("parquet sink: fsync dir %s: %w", dir, err)
	}
	return nil
}
