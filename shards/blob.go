package shards

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob" // gs://
	"gocloud.dev/blob/memblob"   // mem://, shared by name (see OpenBucket)
	_ "gocloud.dev/blob/s3blob"  // s3://
)

// NormalizeURL turns a plain path into a file:// URL with an absolute path
// and leaves URLs with a scheme unchanged. The path's '%', '?' and '#' are
// escaped, so that a URL parser gives the path back as written (a folder
// named "a%41" stays "a%41", not "aA").
func NormalizeURL(raw string) (string, error) {
	norm, err := normalizeRaw(raw)
	if err != nil || strings.Contains(raw, "://") {
		return norm, err
	}
	return "file://" + pathEscaper.Replace(strings.TrimPrefix(norm, "file://")), nil
}

var pathEscaper = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

// normalizeRaw is NormalizeURL without the escaping, for input patterns,
// whose '?' and '%' are glob and literal characters.
func normalizeRaw(raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("shards: empty URL")
	}
	if strings.Contains(raw, "://") {
		return raw, nil
	}
	abs, err := filepath.Abs(raw)
	if err != nil {
		return "", fmt.Errorf("shards: %q: %w", RedactURL(raw), err)
	}
	return "file://" + filepath.ToSlash(abs), nil
}

// SplitURL splits a blob URL into the URL of its bucket (scheme, bucket and
// query, no path) and the key path inside it, without leading or trailing
// slashes. For file:// URLs the bucket is the file system root.
//
//	s3://b/in/00001.tar?region=x  ->  s3://b?region=x, in/00001.tar
//	file:///data/in              ->  file:///, data/in
func SplitURL(raw string) (bucketURL, key string, err error) {
	raw, err = NormalizeURL(raw)
	if err != nil {
		return "", "", err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", RedactError(fmt.Errorf("shards: bad URL %q: %w", RedactURL(raw), err), raw)
	}
	key = strings.Trim(u.Path, "/")
	u.Path = ""
	if u.Scheme == "file" {
		u.Path = "/"
	}
	return u.String(), key, nil
}

// OpenDir opens the folder that a URL names as a bucket whose keys are
// relative to that folder. With create set, a missing local folder is made.
func OpenDir(ctx context.Context, raw string, create bool) (*blob.Bucket, error) {
	bucketURL, prefix, err := SplitURL(raw)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(bucketURL, "file:") {
		dir := "/" + prefix
		b, err := fileblob.OpenBucket(dir, &fileblob.Options{
			CreateDir: create,
			// Temporary files next to their targets: a rename never crosses
			// mounts, and a killed run's leftovers stay visible (*.tmp).
			NoTempDir: true,
			// No .attrs sidecars: a shard folder holds only the shard files.
			Metadata: fileblob.MetadataDontWrite,
		})
		if err != nil {
			return nil, fmt.Errorf("shards: open folder %s: %w", dir, err)
		}
		return b, nil
	}
	b, err := OpenBucket(ctx, bucketURL)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return b, nil
}

// OpenBucket opens the bucket that a bucket URL (no key path) names.
//
// Remote buckets (s3://, gs://, azblob://) retry transient faults, resume
// reads cut mid-stream and time out stalled requests, as RetryOptions
// describes; the context of each call chooses the options (WithRetry) and
// where the retries are counted (WithRetryCounts).
//
// mem:// buckets are shared by name within the process: gocloud's own
// opener makes a new empty bucket on every open, so what one stage wrote
// to mem://out would be invisible to the next. Here every open of
// mem://NAME sees the same objects, and closing one handle leaves the
// others (and the data) alone.
func OpenBucket(ctx context.Context, bucketURL string) (*blob.Bucket, error) {
	u, err := url.Parse(bucketURL)
	if err != nil {
		return nil, RedactError(fmt.Errorf("shards: bad bucket URL %q: %w", RedactURL(bucketURL), err), bucketURL)
	}
	if u.Scheme == memblob.Scheme {
		return openSharedMem(u.Host), nil
	}
	b, err := blob.OpenBucket(ctx, bucketURL)
	if err != nil {
		return nil, RedactError(fmt.Errorf("shards: open bucket %s: %w", RedactURL(bucketURL), err), bucketURL)
	}
	if u.Scheme == fileblob.Scheme {
		return b, nil
	}
	return newRetryBucket(b), nil
}
