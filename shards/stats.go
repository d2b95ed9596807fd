package shards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// File names of output shard id ("00042" -> "00042.parquet", ...).
func ParquetName(id string) string { return id + ".parquet" }
func RejectsName(id string) string { return id + "_rejects.parquet" }
func StatsName(id string) string   { return id + "_stats.json" }

// StatsSuffix ends the name of every shard's stats file.
const StatsSuffix = "_stats.json"

// Stats is NNNNN_stats.json: what happened to one input shard. It is written
// last, after both Parquet files are complete, and so marks the shard as done.
//
// The caller of ShardWriter.Close gives Input, Read, the times, Version and
// ConfigHash; the writer fills in the counts of what it wrote.
type Stats struct {
	Shard string `json:"shard"` // output shard id
	Input string `json:"input"` // input shard URL

	// Every sample read is written or rejected: Read == Written + Rejected.
	Read     int64 `json:"read"`
	Written  int64 `json:"written"`
	Rejected int64 `json:"rejected"`
	// Rejected samples by reason code and by the stage that rejected them.
	Reasons map[string]int64 `json:"reasons"`
	ByStage map[string]int64 `json:"by_stage"`

	// ImageBytes is the total size of the stored (encoded) images.
	ImageBytes int64 `json:"image_bytes"`
	// Files are the shard's Parquet files and their sizes in bytes.
	Files map[string]int64 `json:"files"`

	// Object-store faults survived while reading the input: requests
	// retried, reads resumed from the offset reached, and the faults behind
	// both by reason (see RetryCounts). Files written before these fields
	// existed read as zero.
	Retries      int64            `json:"retries"`
	Resumes      int64            `json:"resumes"`
	RetryReasons map[string]int64 `json:"retry_reasons,omitempty"`

	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	DurationS   float64   `json:"duration_s"`
	SamplesPerS float64   `json:"samples_per_s"` // Read / DurationS

	Version    string `json:"version"`
	ConfigHash string `json:"config_hash"`
}

// check reports whether the counts add up.
func (st *Stats) check() error {
	if st.Read != st.Written+st.Rejected {
		return fmt.Errorf("shards: shard %s: read %d samples but wrote %d rows and %d rejects; "+
			"every sample must end up once as a row or a reject (a pipeline bug: a stage dropped or duplicated samples)",
			st.Shard, st.Read, st.Written, st.Rejected)
	}
	var n int64
	for _, c := range st.Reasons {
		n += c
	}
	if n != st.Rejected {
		return fmt.Errorf("shards: shard %s: reasons count %d rejects, want %d", st.Shard, n, st.Rejected)
	}
	return nil
}

// ReadStats reads shard id's stats file. A missing file is an error for which
// errors.Is(err, ErrIncomplete) holds.
func ReadStats(ctx context.Context, out *blob.Bucket, id string) (Stats, error) {
	var st Stats
	data, err := out.ReadAll(ctx, StatsName(id))
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return st, fmt.Errorf("shards: shard %s: no %s: %w", id, StatsName(id), ErrIncomplete)
		}
		return st, fmt.Errorf("shards: shard %s: read %s: %w", id, StatsName(id), err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("shards: shard %s: %s is not valid stats JSON (%v); delete it to redo the shard: %w",
			id, StatsName(id), err, ErrIncomplete)
	}
	return st, nil
}

// ErrIncomplete says that a shard has no valid stats file: it was never
// finished and must be redone.
var ErrIncomplete = errors.New("shard incomplete")

// Complete reports whether shard id is done: its stats file exists, is valid
// JSON whose counts add up (Read == Written + Rejected), and the Parquet files
// it lists exist with the sizes it records. A false result with a nil error
// means "redo the shard"; an error means the bucket could not be read.
func Complete(ctx context.Context, out *blob.Bucket, id string) (bool, error) {
	st, err := ReadStats(ctx, out, id)
	if errors.Is(err, ErrIncomplete) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.check() != nil || st.Shard != id || len(st.Files) == 0 {
		return false, nil
	}
	for name, size := range st.Files {
		a, err := out.Attributes(ctx, name)
		if gcerrors.Code(err) == gcerrors.NotFound {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("shards: shard %s: %s: %w", id, name, err)
		}
		if a.Size != size {
			return false, nil
		}
	}
	return true, nil
}

// encodeJSON is indented JSON with a final newline, "<" and ">" left as is.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
