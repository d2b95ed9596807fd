package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/kediff/kediff/shards"
	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// source is what a SHARD_URL names: the folder holding the shards (also for a
// single file, so that its rejects and stats are found next to it) and the
// NNNNN.parquet files to report on, in name order.
type source struct {
	url    string // as given, normalised (file:// for plain paths)
	dirURL string
	dir    *blob.Bucket
	shards []*shard
	// incomplete names the shards without a stats file (a run still going, or killed).
	incomplete []string
}

// shard is one NNNNN.parquet file. Its footer is read when the source is
// opened and again for each pass, not kept: a dataset of many thousands of
// shards costs one footer at a time.
type shard struct {
	id, name string // "00000", "00000.parquet"
	url      string
	size     int64
	cols     *columns // shared by the shards of one schema
	rows     int64
	// first is the global index of the shard's first row over all shards.
	first int64
	// stats is the shard's NNNNN_stats.json, nil when it has none.
	stats *shards.Stats
}

// openSource resolves rawURL (a shard folder or one .parquet file) and opens
// every shard's Parquet footer. Its errors say what the URL lacks.
func openSource(ctx context.Context, rawURL string) (*source, error) {
	u, err := shards.NormalizeURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	s := &source{url: u}
	dirURL, name, err := splitParent(u)
	if err != nil {
		return nil, err
	}
	isFile, err := isObject(ctx, u, dirURL, name)
	if err != nil {
		return nil, err
	}
	if isFile {
		s.dirURL = dirURL
	} else {
		s.dirURL, name = u, ""
	}
	if s.dir, err = shards.OpenDir(ctx, s.dirURL, false); err != nil {
		return nil, fmt.Errorf("inspect: %s: %w", rawURL, err)
	}
	var names []string
	if isFile {
		if strings.HasSuffix(name, "_rejects.parquet") {
			s.close()
			return nil, fmt.Errorf("inspect: %s is a rejects file; give its shard (%s) or the folder",
				rawURL, strings.TrimSuffix(name, "_rejects.parquet")+".parquet")
		}
		names = []string{name}
	} else if names, err = s.list(ctx); err != nil {
		s.close()
		return nil, err
	}
	var first int64
	schemas := map[string]*columns{}
	for _, n := range names {
		sh, err := s.openShard(ctx, n, schemas)
		if err != nil {
			s.close()
			return nil, err
		}
		sh.first = first
		first += sh.rows
		s.shards = append(s.shards, sh)
		if sh.stats == nil {
			s.incomplete = append(s.incomplete, sh.id)
		}
	}
	return s, nil
}

func (s *source) close() {
	if s.dir != nil {
		s.dir.Close()
	}
}

// rows is the number of rows over all shards.
func (s *source) rows() int64 {
	var n int64
	for _, sh := range s.shards {
		n += sh.rows
	}
	return n
}

// splitParent splits a normalised URL into the URL of its parent folder
// (query kept) and its last path element.
func splitParent(u string) (dirURL, name string, err error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", "", fmt.Errorf("inspect: bad URL %q: %w", u, err)
	}
	clean := strings.TrimRight(p.Path, "/")
	i := strings.LastIndexByte(clean, '/')
	if i < 0 {
		// s3://bucket/00000.parquet has the path "/00000.parquet"; a bare
		// bucket has none.
		return u, "", nil
	}
	name = clean[i+1:]
	p.Path = clean[:i]
	if p.Scheme == "file" && p.Path == "" {
		p.Path = "/"
	}
	return p.String(), name, nil
}

// isObject reports whether u names a file rather than a folder. For local
// paths it asks the file system; in object stores a name ending in .parquet
// is taken as a file and anything else as a folder (prefix).
func isObject(ctx context.Context, u, dirURL, name string) (bool, error) {
	if p, ok := strings.CutPrefix(u, "file://"); ok {
		p, _, _ = strings.Cut(p, "?")
		fi, err := os.Stat(p)
		if err != nil {
			return false, fmt.Errorf("inspect: %s: %w; give a shard folder (kediff preprocess --output) or one NNNNN.parquet", u, err)
		}
		return !fi.IsDir(), nil
	}
	if name == "" {
		return false, nil
	}
	if strings.HasSuffix(name, ".parquet") {
		return true, nil
	}
	b, err := shards.OpenDir(ctx, dirURL, false)
	if err != nil {
		return false, fmt.Errorf("inspect: %s: %w", u, err)
	}
	defer b.Close()
	if _, err := b.Attributes(ctx, name); err == nil {
		return true, nil
	}
	return false, nil
}

// list returns the shard files of the folder: NNNNN.parquet at its top
// level, not the rejects. A folder without any says what it holds instead.
func (s *source) list(ctx context.Context) ([]string, error) {
	var names, other []string
	it := s.dir.List(&blob.ListOptions{Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inspect: list %s: %w", s.url, err)
		}
		switch {
		case obj.IsDir:
			other = append(other, obj.Key)
		case strings.HasSuffix(obj.Key, ".parquet") && !strings.HasSuffix(obj.Key, "_rejects.parquet"):
			names = append(names, obj.Key)
		case !strings.HasSuffix(obj.Key, "_rejects.parquet"):
			other = append(other, obj.Key)
		}
	}
	if len(names) == 0 {
		held := "nothing"
		if len(other) > 0 {
			if len(other) > 5 {
				other = append(other[:5], fmt.Sprintf("... (%d more)", len(other)-5))
			}
			held = strings.Join(other, ", ")
		}
		return nil, fmt.Errorf("inspect: %s holds no shard (no NNNNN.parquet; it holds %s); give the output folder of kediff preprocess or one NNNNN.parquet", s.url, held)
	}
	slices.Sort(names)
	return names, nil
}

// openShard reads one shard file's footer (range reads: nothing else is
// read) and its stats file, and checks that it is a kediff shard. schemas
// holds the columns of the schemas seen so far.
func (s *source) openShard(ctx context.Context, name string, schemas map[string]*columns) (*shard, error) {
	sh := &shard{name: name, id: strings.TrimSuffix(name, ".parquet"), url: joinURL(s.dirURL, name)}
	attrs, err := s.dir.Attributes(ctx, name)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("inspect: %s not found; check the URL", sh.url)
		}
		return nil, fmt.Errorf("inspect: %s: %w", sh.url, err)
	}
	sh.size = attrs.Size
	f, err := s.open(ctx, sh, false)
	if err != nil {
		ra := shardReader(ctx, s.dir, name)
		return nil, fmt.Errorf("inspect: %s is not a Parquet file (%v)%s; give a kediff shard folder or one NNNNN.parquet",
			sh.url, err, startsWith(ra, attrs.Size))
	}
	key := f.Schema().String()
	if sh.cols = schemas[key]; sh.cols == nil {
		cols, err := columnsOf(f.Schema())
		if err != nil {
			return nil, fmt.Errorf("inspect: %s is not a kediff shard: %w", sh.url, err)
		}
		sh.cols = &cols
		schemas[key] = sh.cols
	}
	sh.rows = f.NumRows()
	if st, err := shards.ReadStats(ctx, s.dir, sh.id); err == nil {
		sh.stats = &st
	}
	return sh, nil
}

// open reads a shard's footer; with pages, also its page index, so that
// seeking to a row reads only the pages that hold it.
func (s *source) open(ctx context.Context, sh *shard, pages bool) (*parquet.File, error) {
	ra := shardReader(ctx, s.dir, sh.name)
	return shards.OpenParquet(ra, sh.size, pages, parquet.ReadBufferSize(256<<10))
}

// startsWith quotes the first bytes of a file that is not Parquet, so that
// the user sees what it is.
func startsWith(ra io.ReaderAt, size int64) string {
	buf := make([]byte, min(size, 40))
	n, _ := ra.ReadAt(buf, 0)
	if n == 0 {
		return ": it is empty"
	}
	head := buf[:n]
	if !utf8.Valid(head) {
		return fmt.Sprintf(": it starts with the bytes % x", head[:min(n, 8)])
	}
	return fmt.Sprintf(": it starts with %q", head)
}

// joinURL appends a file name to a folder URL, keeping its query.
func joinURL(dirURL, name string) string {
	base, q, _ := strings.Cut(dirURL, "?")
	u := strings.TrimRight(base, "/") + "/" + name
	if q != "" {
		u += "?" + q
	}
	return u
}

// bytesRead counts the bytes read from shard files, for the tests that
// check that unshown images stay on the blob.
var bytesRead atomic.Int64

// countingReaderAt counts the bytes read through it (bytesRead).
type countingReaderAt struct{ r io.ReaderAt }

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	bytesRead.Add(int64(n))
	return n, err
}

// shardReader is a counted random-access reader of a shard file.
func shardReader(ctx context.Context, b *blob.Bucket, key string) io.ReaderAt {
	return countingReaderAt{shards.NewBlobReaderAt(ctx, b, key)}
}
