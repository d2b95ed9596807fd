package shards

import (
	"context"
	"fmt"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Format names how an input shard stores its samples.
type Format string

// Input formats.
const (
	FormatTar     Format = "tar"     // WebDataset tar (optionally .tar.gz / .tgz)
	FormatParquet Format = "parquet" // Parquet with an image bytes column
	FormatFolder  Format = "folder"  // a folder of images with .txt sidecars
)

// ReasonMemberTooLarge marks a tar member, Parquet cell or file bigger than
// ReadOptions.MaxMemberBytes; its bytes are never read into memory.
const ReasonMemberTooLarge Reason = "member_too_large"

// DefaultMaxMemberBytes bounds one image or caption read into memory.
const DefaultMaxMemberBytes = 64 << 20

// Input is one input shard: the unit of work, of resume and of the split
// between workers.
type Input struct {
	// URL is the blob URL of the tar or Parquet file, or of the folder.
	URL string
	// ID names the output shard. It derives from the input's own path so that
	// it stays the same when more inputs appear (see Expand).
	ID     string
	Format Format
}

// ReadOptions tunes Read. The zero value reads every format with
// auto-detection.
type ReadOptions struct {
	// MaxMemberBytes bounds one member, cell or file; bigger ones become a
	// member_too_large reject. 0 means DefaultMaxMemberBytes.
	MaxMemberBytes int64
	// CaptionColumn, ImageColumn and KeyColumn override the Parquet column
	// auto-detection. ImageColumn may name a binary column ("jpg") or a
	// struct with a "bytes" field ("image").
	CaptionColumn, ImageColumn, KeyColumn string
	// Buffers, if set, supplies the buffers of tar members' image bytes;
	// the consumer hands each Sample.Image back with Buffers.Put once done
	// with it. Nil allocates a new buffer for every image.
	Buffers *BufferPool
}

func (o ReadOptions) maxBytes() int64 {
	if o.MaxMemberBytes <= 0 {
		return DefaultMaxMemberBytes
	}
	return o.MaxMemberBytes
}

// Read streams the samples of one input shard in order, calling emit for
// each with Index 0, 1, 2, ..., Shard set to in.ID and Source to
// in.URL + "#" + member, row or file. It returns how many samples it emitted.
//
// Problems with single samples (missing caption, unsafe tar member, a tar cut
// short) are emitted as Samples with Reject set, never returned as errors, so
// that a run goes on and every sample is accounted for. Read returns an error
// only when the shard cannot be opened at all, when emit fails, or when ctx
// is done. Emitted samples own their buffers.
func Read(ctx context.Context, in Input, opt ReadOptions, emit func(Sample) error) (int, error) {
	e := &emitter{in: in, emit: emit}
	var err error
	switch in.Format {
	case FormatTar:
		err = readTar(ctx, in, opt, e)
	case FormatParquet:
		err = readParquet(ctx, in, opt, e)
	case FormatFolder:
		err = readFolder(ctx, in, opt, e)
	default:
		err = fmt.Errorf("shards: input %s: unknown format %q (want tar, parquet or folder)", in.URL, in.Format)
	}
	return e.n, RedactError(err, in.URL)
}

// emitter numbers samples and fills the fields every reader shares.
type emitter struct {
	in   Input
	emit func(Sample) error
	n    int
	src  string // RedactURL(in.URL), once
}

func (e *emitter) send(s Sample, member string) error {
	s.Shard = e.in.ID
	s.Index = e.n
	if e.src == "" {
		e.src = RedactURL(e.in.URL) // Source is stored: no credentials
	}
	s.Source = e.src + "#" + member
	if s.Reject != "" {
		// Rejects carry what identifies the sample, not its image.
		s.Image = nil
	}
	e.n++
	return e.emit(s)
}

// openObject opens the bucket holding the object that rawURL names and
// returns it with the object's key.
func openObject(ctx context.Context, rawURL string) (*blob.Bucket, string, error) {
	bucketURL, key, err := SplitURL(rawURL)
	if err != nil {
		return nil, "", err
	}
	b, err := OpenDir(ctx, bucketURL, false)
	if err != nil {
		return nil, "", err
	}
	return b, key, nil
}

// blobError words a blob error so that the user knows what to fix.
func blobError(what string, err error) error {
	code := gcerrors.Code(err)
	if httpStatus(err) == 403 {
		code = gcerrors.PermissionDenied // gocloud calls GCS's 403 NotFound
	}
	switch code {
	case gcerrors.NotFound:
		return fmt.Errorf("shards: %s not found; check the URL (bucket, prefix and file name): %w", RedactURL(what), err)
	case gcerrors.PermissionDenied:
		return fmt.Errorf("shards: access to %s denied; check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, ...) and the bucket policy: %w", RedactURL(what), err)
	}
	return fmt.Errorf("shards: %s: %w", RedactURL(what), err)
}

// splitKey splits a member name into its key (directory and base name up to
// the first dot) and extension (the rest, lower-cased), as WebDataset does:
// "x/000012.jpg" -> "x/000012", "jpg"; "a.seg.png" -> "a", "seg.png".
func splitKey(name string) (key, ext string) {
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i+1], name[i+1:]
	}
	if i := strings.IndexByte(base, '.'); i >= 0 {
		return dir + base[:i], strings.ToLower(base[i+1:])
	}
	return dir + base, ""
}

// imageExts are the extensions taken as the sample's image.
var imageExts = map[string]bool{
	"jpg": true, "jpeg": true, "png": true, "webp": true, "gif": true,
	"bmp": true, "tif": true, "tiff": true,
}

func isCaptionExt(ext string) bool { return ext == "txt" || ext == "caption" }
