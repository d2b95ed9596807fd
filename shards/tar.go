package shards

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
)

// readTar streams a WebDataset tar (img2dataset's layout: KEY.jpg, KEY.txt,
// KEY.json, ...) from its blob, never holding more than one sample in memory.
func readTar(ctx context.Context, in Input, opt ReadOptions, e *emitter) error {
	b, key, err := openObject(ctx, in.URL)
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return blobError("input "+in.URL, err)
	}
	defer r.Close()
	// A small buffer: tar headers and captions come through it, while
	// io.ReadFull of a larger image member reads mostly straight into the
	// member's buffer, not through a second copy.
	src := &stickyReader{r: bufio.NewReaderSize(r, 16<<10)}
	var tr io.Reader = src
	if lk := strings.ToLower(key); strings.HasSuffix(lk, ".gz") || strings.HasSuffix(lk, ".tgz") {
		zr, err := gzip.NewReader(src)
		if err != nil {
			if src.err != nil {
				return fmt.Errorf("shards: read %s: %w", in.URL, src.err)
			}
			return e.send(Sample{Reject: ReasonUnreadableInput,
				Detail: "not a gzip stream: " + err.Error()}, "")
		}
		defer zr.Close()
		tr = zr
	}
	if err := scanTar(ctx, tr, opt, e); err != nil {
		return err
	}
	if src.err != nil {
		// The store failed under us (network, permissions): the shard must be
		// retried, not recorded as truncated.
		return fmt.Errorf("shards: read %s: %w (retry the shard)", in.URL, src.err)
	}
	return nil
}

// stickyReader remembers the first error of the underlying reader other than
// io.EOF, to tell a failing store apart from a truncated file.
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// tarSample collects the consecutive members that share a key.
type tarSample struct {
	s      Sample
	member string // the member named in Source: the image, else the first
	exts   map[string]string
	open   bool
}

// scanTar groups consecutive members by key and emits one Sample per group.
// A key that reappears after another key starts a new sample with the same
// key: tars are read as a stream, and holding groups open would mean holding
// a whole shard in memory.
func scanTar(ctx context.Context, r io.Reader, opt ReadOptions, e *emitter) error {
	tr := tar.NewReader(r)
	limit := opt.maxBytes()
	cur := tarSample{exts: map[string]string{}}
	flush := func() error {
		if !cur.open {
			return nil
		}
		s := cur.s
		switch {
		case s.Reject != "":
		case !s.HasImage:
			s.Reject, s.Detail = ReasonNoImage, "no image member (want one of .jpg .jpeg .png .webp .gif .bmp .tif .tiff)"
		case !s.HasCaption:
			s.Reject, s.Detail = ReasonNoCaption, "no .txt or .caption member"
		}
		member := cur.member
		cur = tarSample{exts: cur.exts}
		clear(cur.exts)
		return e.send(s, member)
	}
	lastName := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return tarBroken(e, &cur, lastName, err)
		}
		lastName = hdr.Name
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		}
		if why := unsafeMember(hdr); why != "" {
			if err := flush(); err != nil {
				return err
			}
			key, _ := splitKey(hdr.Name)
			if err := e.send(Sample{Key: key, Reject: ReasonUnsafePath, Detail: why}, hdr.Name); err != nil {
				return err
			}
			continue
		}
		name := path.Clean(hdr.Name)
		key, ext := splitKey(name)
		if cur.open && key != cur.s.Key {
			if err := flush(); err != nil {
				return err
			}
		}
		if !cur.open {
			cur.open, cur.s.Key, cur.member = true, key, name
		}
		kind := ext
		switch {
		case imageExts[ext]:
			kind = "image"
		case isCaptionExt(ext):
			kind = "caption"
		case ext == "json":
		default:
			continue // other members (.cls, .npy, ...) are not needed; the sample is kept
		}
		if prev, dup := cur.exts[kind]; dup {
			if cur.s.Reject == "" {
				cur.s.Reject = ReasonDuplicateMember
				cur.s.Detail = fmt.Sprintf("members %s and %s are both the sample's %s", prev, name, kind)
			}
			continue
		}
		cur.exts[kind] = name
		if hdr.Size > limit {
			if cur.s.Reject == "" {
				cur.s.Reject = ReasonMemberTooLarge
				cur.s.Detail = fmt.Sprintf("member %s has %d bytes, limit %d (raise read.max_member_bytes in the config)", name, hdr.Size, limit)
			}
			continue
		}
		// The header gives the size: one allocation of exactly that, where a
		// growing buffer would reallocate and copy each image at least once.
		var data []byte
		if kind == "image" {
			data = opt.Buffers.Get(int(hdr.Size))
		} else {
			data = make([]byte, hdr.Size)
		}
		if _, err := io.ReadFull(tr, data); err != nil {
			return tarBroken(e, &cur, name, err)
		}
		switch kind {
		case "image":
			cur.s.Image, cur.s.ImageName, cur.s.HasImage = data, path.Base(name), true
			cur.member = name
		case "caption":
			cur.s.Caption, cur.s.HasCaption = captionText(data), true
		case "json":
			cur.s.Meta = metaJSON(data)
		}
	}
}

// tarBroken ends a tar that cannot be read further: the sample in progress,
// or a stand-in for the unreadable rest, becomes one reject.
func tarBroken(e *emitter, cur *tarSample, member string, err error) error {
	s := cur.s
	if cur.open {
		member = cur.member
	}
	reason := ReasonTruncatedInput
	if !cur.open && e.n == 0 && member == "" {
		reason = ReasonUnreadableInput // not a tar at all, or broken from the start
	}
	detail := "tar ends or breaks here, the rest of the shard is lost: " + err.Error()
	if s.Reject != "" && s.Detail != "" {
		// Keep what was wrong already, e.g. a member whose header claims
		// more bytes than the file holds.
		detail += " (and " + s.Detail + ")"
	}
	s.Reject, s.Detail = reason, detail
	cur.open = false
	return e.send(s, member)
}

// unsafeMember says why a member must not be used, or "" when it is fine.
// Nothing is ever written from tar names; a member that could escape a
// directory or points elsewhere is reported rather than quietly dropped.
func unsafeMember(hdr *tar.Header) string {
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00':
	case tar.TypeSymlink, tar.TypeLink:
		return fmt.Sprintf("member %q is a link to %q; links are not followed", hdr.Name, hdr.Linkname)
	default:
		return fmt.Sprintf("member %q is not a regular file (type %q)", hdr.Name, hdr.Typeflag)
	}
	name := hdr.Name
	if name == "" {
		return "member with an empty name"
	}
	if name[0] == '/' || name[0] == '\\' || (len(name) >= 2 && name[1] == ':') {
		return fmt.Sprintf("member %q has an absolute path", name)
	}
	for _, el := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return fmt.Sprintf("member %q climbs out of the archive with ..", name)
		}
	}
	return ""
}

// captionText drops the trailing line break that editors and shell tools add
// to .txt files and keeps everything else as read: invalid UTF-8 and blank
// captions are the text stage's to reject, with a reason, not the reader's to
// repair silently.
func captionText(b []byte) string {
	return strings.TrimRight(string(b), "\r\n")
}

// metaJSON keeps valid JSON as is and wraps anything else in a JSON string, so
// that Meta is always valid JSON and nothing is dropped.
func metaJSON(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	out, _ := json.Marshal(strings.ToValidUTF8(string(b), "\uFFFD"))
	return out
}
