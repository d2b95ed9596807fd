package imageset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image.Decode formats
	_ "image/jpeg"
	_ "image/png"
	neturl "net/url"
	"path"
	"slices"
	"strings"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/kediff/kediff/shards"
)

// Kind says what a Set was opened from.
type Kind string

// The kinds of set that Open recognises (see the package doc).
const (
	KindSamples Kind = "samples" // a kediff sample output folder
	KindShards  Kind = "shards"  // kediff Parquet shards
	KindInput   Kind = "input"   // tars, Parquet files or image folders
)

// indexFile is sample.IndexFile, the list of a sample output folder's
// images; this package does not import package sample (and the model code
// behind it) for one name.
const indexFile = "samples.jsonl"

// maxExamples is how many bad items an error names.
const maxExamples = 5

// Item is one image of a set and its prompt.
type Item struct {
	// Key names the item within the set: the PNG's file name for sample
	// output, "shard/key" for shards and inputs.
	Key    string
	Image  image.Image
	Prompt string // "" when the set has none for this image
}

// Set is an opened image set. Open finds what it holds; Each reads it.
type Set struct {
	url     string
	kind    Kind
	inputs  []input  // KindShards, KindInput
	records []record // KindSamples
}

// input is one input shard and how to read it.
type input struct {
	shards.Input
	opt shards.ReadOptions
}

// record is the part of a samples.jsonl line that this package reads.
type record struct {
	Index  int    `json:"index"`
	File   string `json:"file"`
	Prompt string `json:"prompt"`
}

// expected is what Open's errors say a set may be.
const expected = "want a kediff sample folder (NNNNN.png + " + indexFile + "), kediff Parquet shards, WebDataset tars, Parquet files with image bytes or a folder of images"

// Open finds the image set at url (a blob URL or a path; for inputs, any
// pattern shards.Expand takes) and checks that it holds something, without
// reading any image.
func Open(ctx context.Context, url string) (*Set, error) {
	if url == "" {
		return nil, fmt.Errorf("imageset: empty URL; %s", expected)
	}
	s := &Set{url: url}
	if plainFolder(url) {
		ok, err := s.openFolder(ctx)
		if ok || err != nil {
			return s, err
		}
	}
	ins, err := shards.Expand(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("imageset: %s matched nothing usable: %w (%s)", url, err, expected)
	}
	s.kind = KindShards
	for _, in := range ins {
		opt := shards.ReadOptions{}
		if in.Format == shards.FormatParquet {
			c, err := classify(ctx, in.URL)
			if err != nil {
				return nil, fmt.Errorf("imageset: %s: %w", url, err)
			}
			switch c {
			case kediffRejects:
				continue // no images: what preprocessing left out
			case kediffRows:
				opt.CaptionColumn = "prompt"
				s.inputs = append(s.inputs, input{in, opt})
				continue
			}
		}
		s.kind = KindInput
		s.inputs = append(s.inputs, input{in, opt})
	}
	if len(s.inputs) == 0 {
		return nil, fmt.Errorf("imageset: %s matched nothing but kediff rejects files (NNNNN_rejects.parquet), which hold no images; give the shards folder or its NNNNN.parquet files", url)
	}
	return s, nil
}

// URL is the URL the set was opened from.
func (s *Set) URL() string { return s.url }

// Kind says what the set was opened from.
func (s *Set) Kind() Kind { return s.kind }

// plainFolder reports whether url can only name a folder: no glob or brace
// pattern and no tar or Parquet file name.
func plainFolder(url string) bool {
	p := url
	if i := strings.Index(p, "://"); i >= 0 {
		p = p[i+3:]
	}
	if i := strings.Index(p, "?"); i >= 0 && strings.Contains(url, "://") {
		p = p[:i] // a query (?region=...), as shards.Expand reads it
	}
	low := strings.ToLower(p)
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".parquet"} {
		if strings.HasSuffix(low, ext) {
			return false
		}
	}
	return !strings.ContainsAny(p, "*?[{")
}

// openFolder recognises a sample output folder and a shards folder with a
// manifest. ok is false when the folder is neither (or is not there): the
// caller then tries it as an input.
func (s *Set) openFolder(ctx context.Context) (ok bool, err error) {
	b, err := shards.OpenDir(ctx, s.url, false)
	if err != nil {
		return false, nil // shards.Expand says what is wrong with the URL
	}
	defer b.Close()
	if data, err := b.ReadAll(ctx, indexFile); err == nil {
		s.kind = KindSamples
		return true, s.readIndex(data)
	} else if gcerrors.Code(err) != gcerrors.NotFound {
		return false, fmt.Errorf("imageset: %s: read %s: %w", s.url, indexFile, err)
	}
	data, err := b.ReadAll(ctx, shards.ManifestName)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("imageset: %s: read %s: %w", s.url, shards.ManifestName, err)
	}
	s.kind = KindShards
	return true, s.readManifest(data)
}

// readIndex takes the images and prompts of a sample folder's samples.jsonl.
func (s *Set) readIndex(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("imageset: %s: %s line %d is not a sample record: %v (was the folder written by kediff sample?)", s.url, indexFile, line, err)
		}
		if r.File == "" {
			r.File = fmt.Sprintf("%05d.png", r.Index)
		}
		if r.File != path.Base(r.File) || r.File == ".." {
			return fmt.Errorf("imageset: %s: %s line %d names file %q outside the folder; want a file name such as 00000.png", s.url, indexFile, line, r.File)
		}
		s.records = append(s.records, r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("imageset: %s: %s: %w", s.url, indexFile, err)
	}
	if len(s.records) == 0 {
		return fmt.Errorf("imageset: %s: %s lists no images: the set matched nothing (did kediff sample finish?)", s.url, indexFile)
	}
	return nil
}

// readManifest takes the complete shards that manifest.json lists.
func (s *Set) readManifest(data []byte) error {
	var m shards.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("imageset: %s: %s is not a kediff manifest: %v", s.url, shards.ManifestName, err)
	}
	for _, sh := range m.Shards {
		u, err := childURL(s.url, sh.ID+".parquet")
		if err != nil {
			return fmt.Errorf("imageset: %s: %w", s.url, err)
		}
		in := shards.Input{URL: u, ID: sh.ID, Format: shards.FormatParquet}
		s.inputs = append(s.inputs, input{in, shards.ReadOptions{CaptionColumn: "prompt"}})
	}
	if len(s.inputs) == 0 {
		return fmt.Errorf("imageset: %s: %s lists no complete shards (%d incomplete): the set matched nothing; finish the preprocessing run first",
			s.url, shards.ManifestName, len(m.Incomplete))
	}
	return nil
}

// childURL is the URL of file name inside the folder that dir names.
func childURL(dir, name string) (string, error) {
	norm, err := shards.NormalizeURL(dir)
	if err != nil {
		return "", err
	}
	u, err := neturl.Parse(norm)
	if err != nil {
		return "", fmt.Errorf("bad URL %q: %w", dir, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + name
	return u.String(), nil
}

// parquetKind is what a Parquet file is to this package.
type parquetKind int

const (
	otherParquet  parquetKind = iota // someone else's: caption auto-detected
	kediffRows                       // kediff's NNNNN.parquet: prompt column
	kediffRejects                    // kediff's NNNNN_rejects.parquet: no images
)

// object opens the bucket holding the object that url names and returns it
// with the object's key.
func object(ctx context.Context, url string) (*blob.Bucket, string, error) {
	bucketURL, key, err := shards.SplitURL(url)
	if err != nil {
		return nil, "", err
	}
	b, err := shards.OpenBucket(ctx, bucketURL)
	if err != nil {
		return nil, "", err
	}
	return b, key, nil
}

// errEmpty is wrapped by Each's error for a set without items.
var errEmpty = errors.New("the set matched nothing")

// BadItemsError reports the items of a set that Each could not give: images
// that do not decode, samples the reader rejected and images that
// samples.jsonl lists but the folder lacks.
type BadItemsError struct {
	URL                            string
	Good                           int // items Each did give
	Undecodable, Rejected, Missing int
	// Examples are the first few bad items, "key: why".
	Examples []string
}

func (e *BadItemsError) Error() string {
	var what []string
	for _, c := range []struct {
		n    int
		what string
	}{
		{e.Undecodable, "do not decode"},
		{e.Rejected, "were rejected by the reader"},
		{e.Missing, "are listed in " + indexFile + " but missing"},
	} {
		if c.n > 0 {
			what = append(what, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return fmt.Sprintf("imageset: %s: %d of %d items are unusable: %s (%s); fix or remove them",
		e.URL, e.Undecodable+e.Rejected+e.Missing, e.Good+e.Undecodable+e.Rejected+e.Missing,
		strings.Join(what, ", "), strings.Join(e.Examples, "; "))
}

func (e *BadItemsError) add(n *int, key, why string) {
	*n++
	if len(e.Examples) < maxExamples {
		e.Examples = append(e.Examples, key+": "+why)
	}
}

// Each calls fn with every item of the set in order, decoding one image at
// a time. Items that cannot be given (see BadItemsError) are counted and
// skipped, and Each returns a *BadItemsError after the last item; an error
// from fn stops it at once. A set with no items is an error.
func (s *Set) Each(ctx context.Context, fn func(Item) error) error {
	bad := &BadItemsError{URL: s.url}
	var fnErr error // returned as it is, not wrapped
	give := func(key, prompt string, data []byte) error {
		img, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			bad.add(&bad.Undecodable, key, fmt.Sprintf("does not decode (%d bytes): %v", len(data), err))
			return nil
		}
		bad.Good++
		fnErr = fn(Item{Key: key, Image: img, Prompt: prompt})
		return fnErr
	}
	var err error
	if s.kind == KindSamples {
		err = s.eachSample(ctx, bad, give)
	} else {
		err = s.eachInput(ctx, bad, give)
	}
	switch {
	case err != nil && fnErr != nil:
		return fnErr
	case err != nil:
		return err
	case bad.Undecodable+bad.Rejected+bad.Missing > 0:
		return bad
	case bad.Good == 0:
		return fmt.Errorf("imageset: %s: %w: it holds no images (%s)", s.url, errEmpty, expected)
	}
	return nil
}

func (s *Set) eachSample(ctx context.Context, bad *BadItemsError, give func(key, prompt string, data []byte) error) error {
	b, err := shards.OpenDir(ctx, s.url, false)
	if err != nil {
		return fmt.Errorf("imageset: %s: %w", s.url, err)
	}
	defer b.Close()
	for _, r := range s.records {
		data, err := b.ReadAll(ctx, r.File)
		if gcerrors.Code(err) == gcerrors.NotFound {
			bad.add(&bad.Missing, r.File, "listed in "+indexFile+" but not in the folder")
			continue
		}
		if err != nil {
			return fmt.Errorf("imageset: %s: read %s: %w", s.url, r.File, err)
		}
		if err := give(r.File, r.Prompt, data); err != nil {
			return err
		}
	}
	return nil
}

func (s *Set) eachInput(ctx context.Context, bad *BadItemsError, give func(key, prompt string, data []byte) error) error {
	for _, in := range s.inputs {
		var folder *blob.Bucket // opened for images without a .txt
		_, err := shards.Read(ctx, in.Input, in.opt, func(smp shards.Sample) error {
			key := in.ID + "/" + smp.Key
			if smp.Reject == "" {
				return give(key, smp.Caption, smp.Image)
			}
			if in.Format != shards.FormatFolder || smp.Reject != shards.ReasonNoCaption || !smp.HasImage {
				bad.add(&bad.Rejected, key, fmt.Sprintf("%s (%s)", smp.Reject, smp.Detail))
				return nil
			}
			// The .txt sidecar of an image folder is optional here: read the
			// image that shards.Read leaves out of its reject.
			if folder == nil {
				var err error
				if folder, err = shards.OpenDir(ctx, in.URL, false); err != nil {
					return err
				}
			}
			data, err := folder.ReadAll(ctx, smp.ImageName)
			if err != nil {
				return fmt.Errorf("read %s: %w", smp.ImageName, err)
			}
			return give(key, "", data)
		})
		if folder != nil {
			folder.Close()
		}
		if err != nil {
			return fmt.Errorf("imageset: %s: input %s: %w", s.url, in.URL, err)
		}
	}
	return nil
}

func (k Kind) String() string { return string(k) }

// hasColumns reports whether cols holds every name in want as a top-level
// column.
func hasColumns(cols [][]string, want ...string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(cols, func(c []string) bool { return len(c) >= 1 && c[0] == w }) {
			return false
		}
	}
	return true
}
