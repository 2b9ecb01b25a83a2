package state

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/vfs"
)

func TestListFilesAndCheckFileOfAHealthyStore(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	cfg := testConfig(fs, mem) // snapshot every 3
	commitVersions(t, cfg, 4)
	fs.WriteFileAtomic("/ck/state/agg-0/32-64/notes.txt", []byte("not ours"))
	files, err := ListFiles(fs, "/ck/state")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Kind[:1]+string(rune('0'+f.Version)))
		if f.Operator != "agg-0" || f.Lo != 32 || f.Hi != 64 || f.Bytes == 0 || f.Rows < 0 {
			t.Fatalf("file %+v: want agg-0 [32, 64) with bytes and rows", f)
		}
		fi, err := CheckFile(fs, f.Path, mem)
		if err != nil {
			t.Fatalf("CheckFile(%s): %v", f.Path, err)
		}
		if fi.Rows != f.Rows || fi.Bytes != f.Bytes {
			t.Fatalf("CheckFile says %d rows %d bytes, ListFiles %d rows %d bytes", fi.Rows, fi.Bytes, f.Rows, f.Bytes)
		}
	}
	if strings.Join(got, " ") != "d1 d2 d3 s3 d4" {
		t.Fatalf("files %v, want deltas 1..4 and the snapshot of 3", got)
	}
	for v := int64(0); v <= 4; v++ {
		if why := Loadable(files, v); why != "" {
			t.Fatalf("version %d: %s", v, why)
		}
	}
}

func TestCheckFileFindsDamage(t *testing.T) {
	mem := checked(t)
	delta2 := "/ck/state/agg-0/32-64/2.delta.arrow"
	cases := []struct {
		name    string
		damage  func(t *testing.T, fs *vfs.Mem)
		path    string
		wantErr error
		wantIn  string
	}{
		{name: "a flipped value byte fails the checksum",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte {
					i := strings.Index(string(b), "\x88\x77\x66\x55\x44\x33\x22\x11")
					if i < 0 {
						t.Fatal("value bytes not found in the file")
					}
					b[i] ^= 1
					return b
				})
			},
			wantErr: ErrCorrupt, wantIn: "metadata says"},
		{name: "a flipped byte in the leading magic",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { b[0] ^= 1; return b })
			},
			wantErr: ErrCorrupt, wantIn: "Arrow file magic"},
		{name: "a truncated file does not decode",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return b[:len(b)/2] })
			},
			wantErr: ErrCorrupt, wantIn: delta2},
		{name: "a file of another format version",
			damage: func(t *testing.T, fs *vfs.Mem) {
				fs.Corrupt(delta2, func(b []byte) []byte { return rewriteMetadata(t, mem, b, mdFormat, "3") })
			},
			wantErr: ErrVersion, wantIn: delta2},
		{name: "a file moved to another version's name",
			damage: func(t *testing.T, fs *vfs.Mem) {
				b, _ := fs.ReadFile(delta2)
				fs.WriteFileAtomic("/ck/state/agg-0/32-64/9.delta.arrow", b)
			},
			path: "/ck/state/agg-0/32-64/9.delta.arrow", wantErr: ErrCorrupt, wantIn: `sluice.state.version is "2", its path says "9"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			commitVersions(t, testConfig(fs, mem), 2)
			tc.damage(t, fs)
			path := delta2
			if tc.path != "" {
				path = tc.path
			}
			_, err := CheckFile(fs, path, mem)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantIn) || !strings.Contains(err.Error(), path) {
				t.Fatalf("CheckFile: %v\nwant %v naming %s and saying %q", err, tc.wantErr, path, tc.wantIn)
			}
		})
	}
}

func TestLoadableNamesTheMissingDelta(t *testing.T) {
	mem := checked(t)
	fs := vfs.NewMem()
	cfg := testConfig(fs, mem)
	commitVersions(t, cfg, 5) // snapshot at 3
	fs.Remove("/ck/state/agg-0/32-64/2.delta.arrow")
	fs.Remove("/ck/state/agg-0/32-64/5.delta.arrow")
	files, err := ListFiles(fs, "/ck/state")
	if err != nil {
		t.Fatal(err)
	}
	if why := Loadable(files, 4); why != "" {
		t.Fatalf("version 4 loads from the snapshot of 3: %s", why)
	}
	if why := Loadable(files, 2); !strings.Contains(why, "delta of version 2 (after the empty state)") {
		t.Fatalf("version 2: %q", why)
	}
	if why := Loadable(files, 5); !strings.Contains(why, "delta of version 5 (after the snapshot of version 3)") {
		t.Fatalf("version 5: %q", why)
	}
}
