package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// FormatVersion is the version of the files this package writes and the
// only one it reads (format.md). Version 2 added the checkpoint identity to
// metadata.json and the query id and source identities to offsets files;
// version 1 checkpoints are refused, not upgraded: their offsets do not say
// whose they are.
const FormatVersion = 2

// versionError is ErrVersion for a file (or a field of one) of another
// format version, naming both versions and what to do.
func versionError(path, what string, n int) error {
	if n < FormatVersion {
		return fmt.Errorf("checkpoint: %s: %s %d, written by an older sluice; this build reads only version %d and does not upgrade checkpoints (start the query on a new checkpoint directory, or run it with the sluice that wrote this one): %w",
			path, what, n, FormatVersion, ErrVersion)
	}
	return fmt.Errorf("checkpoint: %s: %s %d, this build reads only version %d (written by a newer sluice?): %w", path, what, n, FormatVersion, ErrVersion)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// headerShape is what a header line looks like, for errors.
var headerShape = fmt.Sprintf("v%d crc32c=XXXXXXXX", FormatVersion)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// encode renders v as a checkpoint file: the header line
// "v2 crc32c=XXXXXXXX" and an indented JSON body ending in a newline, the
// checksum covering every byte after the header's newline.
func encode(v any) ([]byte, error) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	out := fmt.Appendf(nil, "v%d crc32c=%08x\n", FormatVersion, crc(body))
	return append(out, body...), nil
}

// decode checks the header and checksum of a checkpoint file read from path
// and unmarshals its body into v. Errors wrap ErrCorrupt or ErrVersion and
// name path.
func decode(path string, data []byte, v any) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint: %s: %s: %w", path, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if len(data) == 0 {
		return corrupt("empty file")
	}
	header, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		if bytes.HasPrefix(data, []byte("v")) && len(data) < 32 {
			return corrupt("truncated in the header line (%d bytes)", len(data))
		}
		return corrupt("not a checkpoint file (no header line %q)", headerShape)
	}
	vers, sum, ok := strings.Cut(string(header), " ")
	digits, isV := strings.CutPrefix(vers, "v")
	n, err := strconv.Atoi(digits)
	if !isV || err != nil || n < 0 {
		return corrupt("not a checkpoint file (first line %s, want %q)", quoteShort(header), headerShape)
	}
	if n != FormatVersion {
		return versionError(path, "format version", n)
	}
	hex, ok := strings.CutPrefix(sum, "crc32c=")
	stored, err := strconv.ParseUint(hex, 16, 32)
	if !ok || err != nil || len(hex) != 8 {
		return corrupt("malformed header %s, want %q", quoteShort(header), headerShape)
	}
	if computed := crc(body); uint32(stored) != computed {
		what := "checksum mismatch"
		if !bytes.HasSuffix(body, []byte{'\n'}) {
			what = "truncated body, checksum mismatch"
		}
		return corrupt("%s (stored %08x, computed %08x)", what, stored, computed)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return corrupt("body: %v", err)
	}
	if dec.More() {
		return corrupt("body: data after the JSON value")
	}
	return nil
}

func quoteShort(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
