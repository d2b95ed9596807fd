package synth

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/kediff/kediff/shards"
)

// BadKind is one kind of deliberately broken sample. Its json sidecar (when it
// has one) names the kind under "bad".
type BadKind struct {
	Name string
	// Doc says what the members look like and what a reader should make of it.
	Doc string
}

// BadKinds are the broken samples that Options.BadSamples appends to the last
// shard, one of each, in this order, with keys following the last good key.
// Each starts from a normally rendered sample of its key.
var BadKinds = []BadKind{
	{"truncated_jpeg", ".jpg cut to half its length (no EOI marker), with .txt and .json: the image fails to decode"},
	{"empty_image", "zero-byte .jpg, with .txt and .json: there is no image to decode"},
	{"no_image", ".txt and .json without a .jpg: a caption with no image (shards.ReasonNoImage)"},
	{"no_caption", ".jpg and .json without a .txt: an image with no caption (shards.ReasonNoCaption)"},
	{"blank_caption", ".txt holding only spaces, a tab and newlines, with a valid .jpg and .json: an empty caption"},
	{"invalid_utf8", ".txt whose caption has bytes 0xff 0xfe spliced in, with a valid .jpg and .json: not UTF-8 text"},
}

// Summary is what Generate wrote.
type Summary struct {
	Output  string   // the output URL as given
	Options Options  // the options used, defaults filled in
	Shards  []string // shard file names in order: 00000.tar, ...
	Samples int      // good samples
	Bad     int      // broken samples (BadKinds), all in the last shard
	Bytes   int64    // total size of the shards
}

// Generate renders opt.Samples samples and writes them as WebDataset tar
// shards into the folder or bucket that outURL names (a blob URL or a plain
// path; a missing local folder is created). Existing shards of the same names
// are replaced. Samples render in parallel; the output does not depend on it.
func Generate(ctx context.Context, outURL string, opt Options) (Summary, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return Summary{}, err
	}
	bucket, err := shards.OpenDir(ctx, outURL, true)
	if err != nil {
		return Summary{}, fmt.Errorf("synth: %w", err)
	}
	defer bucket.Close()

	sum := Summary{Output: outURL, Options: opt}
	nShards := (opt.Samples + opt.PerShard - 1) / opt.PerShard
	for s := range nShards {
		first := s * opt.PerShard
		n := min(opt.PerShard, opt.Samples-first)
		samples, err := renderRange(ctx, opt, first, n)
		if err != nil {
			return sum, err
		}
		members := flatten(samples)
		if opt.BadSamples && s == nShards-1 {
			bad, err := badSamples(opt, first+n)
			if err != nil {
				return sum, err
			}
			members = append(members, bad...)
			sum.Bad = len(BadKinds)
		}
		data, err := tarball(members)
		if err != nil {
			return sum, err
		}
		name := fmt.Sprintf("%05d.tar", s)
		if err := bucket.WriteAll(ctx, name, data, nil); err != nil {
			return sum, fmt.Errorf("synth: write %s to %s: %w", name, outURL, err)
		}
		sum.Shards = append(sum.Shards, name)
		sum.Samples += n
		sum.Bytes += int64(len(data))
	}
	return sum, nil
}

// member is one tar member: a file name and its bytes.
type member struct {
	name string
	data []byte
}

// sample is one encoded sample: its key, members in tar order (.jpg, .txt,
// .json) and the values the broken-sample kinds start from.
type sample struct {
	key           string
	jpg, txt, doc []byte
	meta          record
}

// record is the .json sidecar.
type record struct {
	Key       string   `json:"key"`
	Caption   string   `json:"caption"` // the .txt text
	CaptionEn string   `json:"caption_en"`
	CaptionZh string   `json:"caption_zh"`
	Width     int      `json:"width"`
	Height    int      `json:"height"`
	Objects   []Object `json:"objects"`
	Seed      uint64   `json:"seed"` // Options.Seed; the sample is rand.NewPCG(seed, key)
	Bad       string   `json:"bad,omitempty"`
}

// encode renders and encodes sample number k.
func encode(opt Options, k int) (sample, error) {
	r := rand.New(rand.NewPCG(opt.Seed, uint64(k)))
	img, scene := Render(r, opt)
	lang := opt.Lang
	if lang == "mixed" {
		lang = "zh"
		if r.IntN(3) == 0 {
			lang = "en"
		}
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, &jpeg.Options{Quality: opt.Quality}); err != nil {
		return sample{}, fmt.Errorf("synth: encode sample %d: %w", k, err)
	}
	s := sample{key: fmt.Sprintf("%09d", k), jpg: jpg.Bytes()}
	s.meta = record{
		Key: s.key, Caption: scene.Caption(lang), CaptionEn: scene.CaptionEn, CaptionZh: scene.CaptionZh,
		Width: scene.Width, Height: scene.Height, Objects: scene.Objects, Seed: opt.Seed,
	}
	s.txt = []byte(s.meta.Caption)
	var err error
	s.doc, err = json.Marshal(s.meta)
	return s, err
}

// renderRange encodes samples first .. first+n-1 on all cores.
func renderRange(ctx context.Context, opt Options, first, n int) ([]sample, error) {
	out := make([]sample, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = encode(opt, first+i)
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func flatten(samples []sample) []member {
	var m []member
	for _, s := range samples {
		m = append(m, member{s.key + ".jpg", s.jpg}, member{s.key + ".txt", s.txt}, member{s.key + ".json", s.doc})
	}
	return m
}

// badSamples makes one sample of each BadKind, keys from first on.
func badSamples(opt Options, first int) ([]member, error) {
	var m []member
	for i, kind := range BadKinds {
		s, err := encode(opt, first+i)
		if err != nil {
			return nil, err
		}
		s.meta.Bad = kind.Name
		switch kind.Name {
		case "truncated_jpeg":
			s.jpg = s.jpg[:len(s.jpg)/2]
		case "empty_image":
			s.jpg = []byte{}
		case "no_image":
			s.jpg = nil
		case "no_caption":
			s.txt = nil
			s.meta.Caption = ""
		case "blank_caption":
			s.txt = []byte(" \t \n\n")
			s.meta.Caption = string(s.txt)
		case "invalid_utf8":
			c := []byte(s.meta.Caption)
			half := len(c) / 2
			for half > 0 && c[half]&0xc0 == 0x80 { // split between characters
				half--
			}
			s.txt = append(append(append([]byte{}, c[:half]...), 0xff, 0xfe), c[half:]...)
			// json cannot hold invalid UTF-8; the sidecar keeps the clean caption.
		}
		s.doc, err = json.Marshal(s.meta)
		if err != nil {
			return nil, err
		}
		if s.jpg != nil {
			m = append(m, member{s.key + ".jpg", s.jpg})
		}
		if s.txt != nil {
			m = append(m, member{s.key + ".txt", s.txt})
		}
		m = append(m, member{s.key + ".json", s.doc})
	}
	return m, nil
}

// epoch is every member's modification time, so that equal inputs give
// byte-identical tars.
var epoch = time.Unix(0, 0).UTC()

// tarball writes members as a ustar archive with fixed metadata.
func tarball(members []member) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     m.name,
			Size:     int64(len(m.data)),
			Mode:     0o644,
			ModTime:  epoch,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("synth: tar header %s: %w", m.name, err)
		}
		if _, err := tw.Write(m.data); err != nil {
			return nil, fmt.Errorf("synth: tar member %s: %w", m.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("synth: tar: %w", err)
	}
	return buf.Bytes(), nil
}
