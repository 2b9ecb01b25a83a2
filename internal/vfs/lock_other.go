//go:build !unix

package vfs

import (
	"errors"
	"fmt"
	"io"
)

// Lock is not built for this platform: sluice runs its drivers on unix.
func (OS) Lock(path string) (io.Closer, error) {
	return nil, fmt.Errorf("vfs: lock %s: %w", path, errors.ErrUnsupported)
}
