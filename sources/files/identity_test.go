package files

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

func TestIdentityIsTheAbsoluteDirectory(t *testing.T) {
	f := newFixture(t)
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	want := "files dir=" + f.dir
	if !filepath.IsAbs(f.dir) {
		t.Fatalf("fixture dir %s is not absolute", f.dir)
	}
	other := filepath.Join(filepath.Dir(f.dir), "other")
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"the directory", func(*Config) {}, want},
		{"the same directory spelled relative is the same data", func(c *Config) {
			t.Chdir(filepath.Dir(f.dir))
			c.Dir = filepath.Join(".", filepath.Base(f.dir))
		}, want},
		{"the same directory with a trailing slash is the same data", func(c *Config) { c.Dir = f.dir + "/" }, want},
		{"pacing and the log's place are the same data", func(c *Config) {
			c.Name, c.MaxFilesPerBatch, c.SettleDelay, c.LogDir = "x", 3, time.Second, filepath.Join(t.TempDir(), "log")
		}, want},
		{"another directory is other data", func(c *Config) { c.Dir = other }, "files dir=" + other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.open(t, func(c *Config) { c.Schema = schema; tt.edit(c) })
			if got := s.Identity(); got != tt.want {
				t.Fatalf("Identity() = %q; want %q", got, tt.want)
			}
		})
	}
}
