package shards

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// defaultCodec is shared by every shard a process writes: the codec keeps
// a pool of zstd encoders, each with large tables, that a codec per shard
// would allocate again for every shard.
var defaultCodec = &zstd.Codec{Level: zstd.DefaultLevel}

// WriterOptions tune a ShardWriter. The zero value gives the defaults.
type WriterOptions struct {
	// RowGroupRows is the most rows per row group (default 1000).
	RowGroupRows int
	// RowGroupBytes ends a row group early once its images add up to this many
	// bytes (default 256 MiB), bounding the writer's memory.
	RowGroupBytes int64
	// Compression is the Parquet codec (default zstd).
	Compression compress.Codec
}

const (
	defaultRowGroupRows  = 1000
	defaultRowGroupBytes = 256 << 20
	parquetContentType   = "application/vnd.apache.parquet"
)

// ShardWriter writes one output shard: NNNNN.parquet with the rows in the order
// written, NNNNN_rejects.parquet, and, on Close, NNNNN_stats.json last. Rows are
// flushed one row group at a time; the shard is never held in memory whole.
//
// Files become visible only when complete (blob writers commit on Close), and
// the stats file, the shard's success marker, only after both Parquet files: a
// run killed at any point leaves the shard incomplete (see Complete). With the
// same rows, metadata and options the Parquet files are byte-identical.
//
// A ShardWriter is not safe for concurrent use.
type ShardWriter struct {
	ctx    context.Context // parent: for the stats file
	wctx   context.Context // the Parquet blob writers'; cancelled by Abort
	cancel context.CancelFunc
	out    *blob.Bucket
	id     string
	opt    WriterOptions

	rowsFile, rejFile *countingWriter
	rows              *parquet.GenericWriter[Row]
	rejects           *parquet.GenericWriter[Reject]
	rowBuf            [1]Row
	rejBuf            [1]Reject

	pendingRows, pendingRejects int
	pendingBytes                int64

	written, rejected, imageBytes int64
	reasons, byStage              map[string]int64
	done                          bool
}

// NewShardWriter starts writing output shard id (e.g. "00042") into out. It
// first deletes the shard's stats file if one exists, so that a shard being
// rewritten is incomplete until the new Close.
func NewShardWriter(ctx context.Context, out *blob.Bucket, id string, md Metadata, opt WriterOptions) (*ShardWriter, error) {
	if id == "" {
		return nil, fmt.Errorf("shards: NewShardWriter: empty shard id")
	}
	if opt.RowGroupRows <= 0 {
		opt.RowGroupRows = defaultRowGroupRows
	}
	if opt.RowGroupBytes <= 0 {
		opt.RowGroupBytes = defaultRowGroupBytes
	}
	if opt.Compression == nil {
		opt.Compression = defaultCodec
	}
	if len(md.Config) > 0 && !json.Valid(md.Config) {
		return nil, fmt.Errorf("shards: shard %s: metadata config is not valid JSON; pass the config as encoded by encoding/json", id)
	}
	if err := out.Delete(ctx, StatsName(id)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return nil, fmt.Errorf("shards: shard %s: delete old %s before rewriting: %w", id, StatsName(id), err)
	}
	rowsMeta, err := kvOptions(md, Row{})
	if err != nil {
		return nil, err
	}
	rejMeta, err := kvOptions(md, Reject{})
	if err != nil {
		return nil, err
	}

	w := &ShardWriter{ctx: ctx, out: out, id: id, opt: opt,
		reasons: map[string]int64{}, byStage: map[string]int64{}}
	w.wctx, w.cancel = context.WithCancel(ctx)
	if w.rowsFile, err = w.create(ParquetName(id)); err != nil {
		w.Abort()
		return nil, err
	}
	if w.rejFile, err = w.create(RejectsName(id)); err != nil {
		w.Abort()
		return nil, err
	}
	// Row groups end where Write and WriteReject flush them.
	common := []parquet.WriterOption{parquet.Compression(opt.Compression)}
	w.rows = parquet.NewGenericWriter[Row](w.rowsFile, append(append(common,
		// Min/max of JPEG bytes is useless and large.
		parquet.SkipPageBounds("image", "bytes")), rowsMeta...)...)
	w.rejects = parquet.NewGenericWriter[Reject](w.rejFile, append(common, rejMeta...)...)
	return w, nil
}

func (w *ShardWriter) create(name string) (*countingWriter, error) {
	bw, err := w.out.NewWriter(w.wctx, name, &blob.WriterOptions{ContentType: parquetContentType})
	if err != nil {
		return nil, fmt.Errorf("shards: shard %s: create %s: %w", w.id, name, err)
	}
	return &countingWriter{w: bw}, nil
}

// kvOptions are the key-value metadata options for a file of row type v,
// sorted by key (parquet-go sorts them too), so files are reproducible.
func kvOptions(md Metadata, v any) ([]parquet.WriterOption, error) {
	hf, err := HFMetadata(v)
	if err != nil {
		return nil, err
	}
	opts := []parquet.WriterOption{
		parquet.KeyValueMetadata(MetaHuggingFace, hf),
		parquet.KeyValueMetadata(MetaConfig, string(md.Config)),
		parquet.KeyValueMetadata(MetaInput, RedactURL(md.Input)),
		parquet.KeyValueMetadata(MetaVersion, md.Version),
	}
	for _, k := range slices.Sorted(maps.Keys(md.Extra)) {
		opts = append(opts, parquet.KeyValueMetadata(k, md.Extra[k]))
	}
	return opts, nil
}

// Write appends one row. Its strings must be valid UTF-8.
func (w *ShardWriter) Write(r *Row) error {
	if w.done {
		return fmt.Errorf("shards: shard %s: Write after Close or Abort", w.id)
	}
	if r.Key == "" {
		return fmt.Errorf("shards: shard %s: row from %s has no key", w.id, r.Source)
	}
	var img Image // a row without an image writes a null image
	if r.Image != nil {
		img = *r.Image
	}
	if err := checkUTF8("row", r.Key, "key", r.Key, "caption", r.Caption, "prompt", r.Prompt,
		"prompt_source", r.PromptSource, "image.path", img.Path, "sha256", r.SHA256,
		"source", r.Source, "meta", r.Meta); err != nil {
		return err
	}
	w.rowBuf[0] = *r
	_, err := w.rows.Write(w.rowBuf[:])
	w.rowBuf[0] = Row{}
	if err != nil {
		return fmt.Errorf("shards: shard %s: write row %q: %w", w.id, r.Key, err)
	}
	w.written++
	w.imageBytes += int64(len(img.Bytes))
	w.pendingRows++
	w.pendingBytes += int64(len(img.Bytes)) + int64(len(r.Caption)+len(r.Prompt)+len(r.Meta))
	if w.pendingRows >= w.opt.RowGroupRows || w.pendingBytes >= w.opt.RowGroupBytes {
		if err := w.rows.Flush(); err != nil {
			return fmt.Errorf("shards: shard %s: flush row group: %w", w.id, err)
		}
		w.pendingRows, w.pendingBytes = 0, 0
	}
	return nil
}

// WriteReject appends one rejected sample. Its caption is cut to
// MaxRejectCaption bytes and invalid UTF-8 in it is replaced; the other strings
// are repaired the same way, so a reject can always be recorded.
func (w *ShardWriter) WriteReject(r *Reject) error {
	if w.done {
		return fmt.Errorf("shards: shard %s: WriteReject after Close or Abort", w.id)
	}
	if r.Reason == "" {
		return fmt.Errorf("shards: shard %s: reject %q from %s has no reason", w.id, r.Key, r.Source)
	}
	w.rejBuf[0] = Reject{
		Key:     cleanCaption(r.Key, len(r.Key)),
		Index:   r.Index,
		Source:  cleanCaption(r.Source, len(r.Source)),
		Stage:   cleanCaption(r.Stage, len(r.Stage)),
		Reason:  cleanCaption(r.Reason, len(r.Reason)),
		Detail:  cleanCaption(r.Detail, len(r.Detail)),
		Caption: cleanCaption(r.Caption, MaxRejectCaption),
	}
	_, err := w.rejects.Write(w.rejBuf[:])
	w.rejBuf[0] = Reject{}
	if err != nil {
		return fmt.Errorf("shards: shard %s: write reject %q: %w", w.id, r.Key, err)
	}
	w.rejected++
	w.reasons[r.Reason]++
	w.byStage[r.Stage]++
	w.pendingRejects++
	if w.pendingRejects >= w.opt.RowGroupRows {
		if err := w.rejects.Flush(); err != nil {
			return fmt.Errorf("shards: shard %s: flush rejects: %w", w.id, err)
		}
		w.pendingRejects = 0
	}
	return nil
}

// Written and Rejected count what was written so far.
func (w *ShardWriter) Written() int64  { return w.written }
func (w *ShardWriter) Rejected() int64 { return w.rejected }

// Close finishes the shard: it checks that st.Read == rows + rejects written,
// closes (commits) both Parquet files, then writes NNNNN_stats.json. The caller
// gives st's Input, Read, Started (and Finished, DurationS: default now and
// Finished - Started), Version and ConfigHash; Close fills in the shard id, the
// counts, reasons, file sizes and rate. On any error the shard stays incomplete.
func (w *ShardWriter) Close(st Stats) error {
	if w.done {
		return fmt.Errorf("shards: shard %s: Close after Close or Abort", w.id)
	}
	st.Shard = w.id
	st.Input = RedactURL(st.Input) // stored: no credentials
	st.Written, st.Rejected = w.written, w.rejected
	st.Reasons, st.ByStage = w.reasons, w.byStage
	st.ImageBytes = w.imageBytes
	if err := st.check(); err != nil {
		w.Abort()
		return err
	}
	w.done = true
	if err := closeParquet(w.rows, w.rowsFile); err != nil {
		w.Abort()
		return fmt.Errorf("shards: shard %s: finish %s: %w", w.id, ParquetName(w.id), err)
	}
	if err := closeParquet(w.rejects, w.rejFile); err != nil {
		w.Abort()
		return fmt.Errorf("shards: shard %s: finish %s: %w", w.id, RejectsName(w.id), err)
	}
	w.cancel()
	st.Files = map[string]int64{ParquetName(w.id): w.rowsFile.n, RejectsName(w.id): w.rejFile.n}
	if st.Finished.IsZero() {
		st.Finished = time.Now()
	}
	if st.DurationS == 0 && !st.Started.IsZero() {
		st.DurationS = st.Finished.Sub(st.Started).Seconds()
	}
	if st.DurationS > 0 {
		st.SamplesPerS = float64(st.Read) / st.DurationS
	}
	data, err := encodeJSON(&st)
	if err != nil {
		return fmt.Errorf("shards: shard %s: encode stats: %w", w.id, err)
	}
	if err := writeWhole(w.ctx, w.out, StatsName(w.id), data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("shards: shard %s: write %s (the shard stays incomplete; rerun it): %w", w.id, StatsName(w.id), err)
	}
	return nil
}

func closeParquet[T any](pw *parquet.GenericWriter[T], f *countingWriter) error {
	if err := pw.Close(); err != nil {
		return err
	}
	f.closed = true
	return f.w.Close()
}

// Abort gives up on the shard: the Parquet files being written are discarded
// (their blob writes are cancelled, so nothing new becomes visible) and no stats
// file is written. It is safe to call more than once and after a failed Close.
func (w *ShardWriter) Abort() error {
	w.done = true
	w.cancel()
	var errs []error
	for _, f := range []*countingWriter{w.rowsFile, w.rejFile} {
		if f == nil || f.closed {
			continue
		}
		f.closed = true
		// Closing after cancel aborts the write; its error says so.
		if err := f.w.Close(); err != nil && !errors.Is(err, context.Canceled) && gcerrors.Code(err) != gcerrors.Canceled {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// countingWriter counts the bytes written to a blob writer.
type countingWriter struct {
	w      *blob.Writer
	n      int64
	closed bool
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var _ io.Writer = (*countingWriter)(nil)

// ConfigHash is the hex SHA-256 of a pipeline config (as JSON): a re-run can
// compare it with Stats.ConfigHash to redo shards made with another config.
func ConfigHash(config []byte) string {
	h := sha256.Sum256(config)
	return hex.EncodeToString(h[:])
}
