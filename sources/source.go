package sources

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Offset is a source's position in its input, opaque to the engine. The
// driver stores it as JSON in offsets/<N>.json before batch N runs and hands
// it back unchanged, so a re-run reads exactly the same data. Two offsets
// with equal bytes are equal positions.
type Offset = json.RawMessage

var (
	// ErrOffsetGone: the data between two recorded offsets can no longer be
	// read (retention, a deleted file or topic). Errors wrapping it name what
	// is gone.
	ErrOffsetGone = errors.New("sources: offset no longer available")
	// ErrBadOffset: an offset this source did not write (corrupt or foreign
	// checkpoint).
	ErrBadOffset = errors.New("sources: malformed offset")
	// ErrBadSplit: bytes a stream's DecodeSplit did not make (garbage, a
	// truncated buffer, a split of another source). Errors wrapping it name
	// the decoding source, kind and name.
	ErrBadSplit = errors.New("sources: malformed split")
)

// Stream is a streaming input read in micro-batches: batch N covers the rows
// after its start offset up to and including its end offset.
//
// Contract:
//  1. The driver calls Initial once for a new query, then, per batch, Latest
//     to fix the batch's end, writes both offsets to the checkpoint, and only
//     then calls Splits. After a restart it calls Splits with recorded offsets.
//  2. Splits(start, end) is deterministic: the same offsets give splits that
//     read the same rows in the same order, at any later time, on any
//     machine (until the data is gone: ErrOffsetGone).
//  3. A bounded source (a directory of history) returns the same Latest once
//     everything is read; the driver then knows no new batch has data.
//  4. Methods may be called from the driver goroutine only; splits are read
//     concurrently from tasks. DecodeSplit is the exception: tasks call it
//     concurrently, with each other and with the driver's calls.
//  5. A split crosses processes as bytes. The driver calls Split.Encode;
//     the process that reads the split calls DecodeSplit on its own
//     instance of the stream, built from the same configuration (the same
//     job code). The decoded split reads exactly the rows the encoded one
//     reads, in the same order, using the decoding stream's configuration
//     and resources (a Kafka stream's own client, connected on first use).
//     An executor may call DecodeSplit and Read and nothing else: decoding
//     never depends on Initial, Latest or Splits having run in its process.
//  6. DecodeSplit of bytes this stream did not make (garbage, a truncated
//     buffer, a split of another source, even one of the same kind) returns
//     an error wrapping ErrBadSplit that names the source (kind and name);
//     it never panics. An InProcess stream decodes only its own splits.
type Stream interface {
	// Name identifies the source within a query; offsets are keyed by it.
	Name() string
	// Identity is a canonical description of what data the stream reads:
	// two streams with equal identities read the same offset space, so
	// one's offsets mean the same rows to the other. It names what the
	// data is (Kafka topics or topic pattern, a directory, a generator's
	// kind and every parameter that changes its rows), never how it is
	// reached or paced (brokers, credentials, rate limits, split sizes).
	// A checkpoint records it, and a restart with another identity under
	// the same Name is refused. It must not change during the stream's
	// life.
	Identity() string
	// Schema of every record the source yields.
	Schema() *arrow.Schema
	// Initial is the offset before the first row the query reads.
	Initial(ctx context.Context) (Offset, error)
	// Latest is the end offset of the next batch that starts at start:
	// everything available now, capped by the source's rate limit
	// (max records or files per batch). It equals start when nothing is new.
	Latest(ctx context.Context, start Offset) (Offset, error)
	// Splits divides (start, end] into units tasks read in parallel, in order.
	Splits(ctx context.Context, start, end Offset) ([]Split, error)
	// DecodeSplit rebuilds a split of this source from the bytes of its
	// Encode (contracts 5 and 6). b is not retained.
	DecodeSplit(b []byte) (Split, error)
}

// Split is one unit of a batch's input.
//
// Contract:
//  1. Read may run more than once (a re-run of its batch) and yields the
//     same rows in the same order each time, until the data is gone
//     (ErrOffsetGone).
//  2. Encode returns the split's whole unit of work as bytes: plain data
//     (Kafka: topic, partition, offset range; files: the file and its row
//     groups; generators: the row range), never a process-local handle, so
//     the stream's DecodeSplit in another process rebuilds a split that
//     reads the same rows (Stream contracts 5 and 6). Parameters the
//     stream has from its configuration are left out. The bytes of an
//     InProcess stream's split name data in that process's memory; they
//     decode only there.
type Split interface {
	// Read emits the split's records in order; emit owns each record.
	// Errors name the file, partition or offset where reading failed.
	Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error
	// Rows is the number of rows, or -1 when unknown before reading.
	Rows() int64
	// Encode returns the split as bytes for its stream's DecodeSplit
	// (contract 2). The caller owns the returned slice.
	Encode() ([]byte, error)
}

// ColumnReader is an optional ability of a Split: ReadColumns is Read
// building only the named columns of the source's schema (a subset, in
// schema order), so a query that reads few columns does not pay for the
// others. Its records have exactly those columns.
type ColumnReader interface {
	ReadColumns(ctx context.Context, mem memory.Allocator, cols []string, emit func(arrow.Record) error) error
}

// PositionReader is an optional ability of a Split: ReadAt is Read telling
// emit where in the split each record comes from (a file's row group and
// rows, a partition's offsets), so that an error on one of its values, in
// an operator far above, can name where the value is. cols is nil for every
// column; a split that is also a ColumnReader takes cols as ReadColumns
// does, and only such a split is given cols. Where a split has no ReadAt,
// its String, or its encoding, names the split as a whole.
type PositionReader interface {
	ReadAt(ctx context.Context, mem memory.Allocator, cols []string, emit func(rec arrow.Record, at func() string) error) error
}

// InProcess is an optional ability of a Stream whose data lives only in the
// memory of the process that made it (a test double's records): its splits
// decode only on the same stream instance, so a task reading it must run in
// that process. InProcess says why, completing an error such as
// `source memory "m" works in one process only: <why>`; "" means the
// stream works across processes after all (a wrapper, like a chain, answers
// for the streams it wraps).
type InProcess interface {
	InProcess() string
}

// Committer is an optional ability of a Stream: the driver calls Commit(end)
// after batch ending at end is committed, so the source may trim what it
// keeps (a memory source drops records) or report progress (a Kafka source
// commits a consumer group). Commit failures are logged, never fatal.
type Committer interface {
	Commit(ctx context.Context, end Offset) error
}

// Bounder is an optional ability of a Stream: Bound fixes the end of the
// input at what is available now, so later Latest calls never go past it.
// The AvailableNow trigger (a backfill) calls it once at start and then runs
// rate-limited batches until Latest stops moving. Without it AvailableNow
// runs until a batch finds no new data.
type Bounder interface {
	Bound(ctx context.Context) error
}

// Backlog is an optional ability of a Stream: how far the query is behind
// the data available. The driver calls it on its goroutine after Latest
// fixed a batch's end, before the batch runs, and reports the answer in the
// batch's progress (sources' latestOffset, offsetsBehindLatest), metrics
// and web UI.
//
// Contract:
//  1. latest is the newest offset available when end was fixed, before the
//     source's rate limit capped it (bounded by Bound or an ending offset
//     where the source has one), in the source's own offset format; nil
//     when unknown.
//  2. lag counts the records (Kafka: messages; files: files) after end up
//     to latest, >= 0. perPartition breaks it down by partition, keyed
//     "topic/partition", or is nil for a source without partitions.
//  3. It is cheap: it answers from what the last Latest call learned (no
//     broker round-trip or directory listing when Latest ran for this end)
//     and is never needed for correctness: an error only leaves the lag
//     unreported.
type Backlog interface {
	Backlog(ctx context.Context, end Offset) (latest Offset, lag int64, perPartition map[string]int64, err error)
}

// BadRecordCounter is an optional ability of a Split read under a
// bad-record policy that drops records (skip, dead-letter): the records its
// last Read (or ReadColumns) skipped and handed to a dead-letter sink. The
// task that read the split adds them to its metrics, so they reach the
// driver from any executor, which counts and logs them per batch. Only the
// split's reader calls it, after the read returned.
type BadRecordCounter interface {
	BadRecordCounts() (skipped, deadLettered int64)
}

// Kinds of Drop.
const (
	DropSkipped     = "skipped"     // bad input passed over under a skip policy
	DropQuarantined = "quarantined" // bad input moved aside under a quarantine policy
	DropLost        = "lost"        // recorded input gone, passed over under a data-loss policy
)

// Drop is one piece of a batch's input that a source left out under a
// policy the user chose, never silently: the driver counts it in the
// batch's progress and logs it.
type Drop struct {
	Kind   string // DropSkipped, DropQuarantined or DropLost
	Input  string // what was left out: a file's path, a partition's offsets
	Count  int64  // the records (Kafka: messages; files: 1, the file) it covers
	Reason string // why: the error that made it bad, or what is gone
	To     string // DropQuarantined: where the input went
}

// Dropper is an optional ability of a Stream that may leave input out of a
// batch under a policy (a bad-file policy, a data-loss policy). Drops
// returns what Splits(start, end) left out. The driver calls it on its
// goroutine right after a successful Splits with the same offsets, puts the
// drops in the batch's progress (SourceProgress.Dropped) and logs each at
// Warn naming the batch and the source. The source records each decision
// before Splits returns (in its checkpoint), so a re-run of the batch drops
// exactly the same input.
type Dropper interface {
	Drops(start, end Offset) []Drop
}
