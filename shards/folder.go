package shards

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// folderFile is one file of a folder sample, as listed.
type folderFile struct {
	name string
	size int64
}

// folderSample gathers the files that share a stem: stem.jpg, stem.txt,
// stem.json.
type folderSample struct {
	stem          string
	images        []folderFile
	caption, meta *folderFile
	extraCaption  string
}

// readFolder reads one folder of images with .txt caption sidecars (and
// optional .json), in the order of the file stems. Subfolders are not read:
// Expand makes each of them its own input, so that shards stay small.
func readFolder(ctx context.Context, in Input, opt ReadOptions, e *emitter) error {
	bucketURL, dir, err := SplitURL(in.URL)
	if err != nil {
		return err
	}
	b, err := OpenDir(ctx, bucketURL, false)
	if err != nil {
		return err
	}
	defer b.Close()
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	groups := map[string]*folderSample{}
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return blobError("input folder "+in.URL, err)
		}
		if obj.IsDir {
			continue
		}
		name := strings.TrimPrefix(obj.Key, prefix)
		stem, ext := name, ""
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			stem, ext = name[:i], strings.ToLower(name[i+1:])
		}
		f := folderFile{name: name, size: obj.Size}
		g := groups[stem]
		if g == nil {
			if !imageExts[ext] && !isCaptionExt(ext) && ext != "json" {
				continue // not part of any sample (README, .attrs, ...)
			}
			g = &folderSample{stem: stem}
			groups[stem] = g
		}
		switch {
		case imageExts[ext]:
			g.images = append(g.images, f)
		case isCaptionExt(ext):
			if g.caption != nil {
				g.extraCaption = name
			} else {
				g.caption = &f
			}
		case ext == "json":
			g.meta = &f
		}
	}
	stems := make([]string, 0, len(groups))
	for s, g := range groups {
		// A .json alone is someone else's file (img2dataset's
		// 00000_stats.json), not a sample.
		if len(g.images) > 0 || g.caption != nil {
			stems = append(stems, s)
		}
	}
	sort.Strings(stems)
	limit := opt.maxBytes()
	for _, stem := range stems {
		if err := ctx.Err(); err != nil {
			return err
		}
		g := groups[stem]
		s, member, err := g.read(ctx, b, prefix, limit)
		if err != nil {
			return err
		}
		if err := e.send(s, member); err != nil {
			return err
		}
	}
	return nil
}

// read loads one folder sample, turning per-file problems into a reject.
func (g *folderSample) read(ctx context.Context, b *blob.Bucket, prefix string, limit int64) (Sample, string, error) {
	s := Sample{Key: g.stem}
	member := g.stem
	load := func(f folderFile) ([]byte, bool, error) {
		if f.size > limit {
			s.Reject = ReasonMemberTooLarge
			s.Detail = fmt.Sprintf("file %s has %d bytes, limit %d (raise read.max_member_bytes in the config)", f.name, f.size, limit)
			return nil, false, nil
		}
		data, err := b.ReadAll(ctx, prefix+f.name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			switch gcerrors.Code(err) {
			case gcerrors.NotFound, gcerrors.PermissionDenied:
				s.Reject, s.Detail = ReasonUnreadableInput, fmt.Sprintf("file %s: %v", f.name, err)
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("shards: read %s%s: %w (retry the shard)", prefix, f.name, err)
		}
		if int64(len(data)) > limit {
			s.Reject, s.Detail = ReasonMemberTooLarge, fmt.Sprintf("file %s is over %d bytes", f.name, limit)
			return nil, false, nil
		}
		return data, true, nil
	}
	if g.caption != nil {
		member = g.caption.name
		data, ok, err := load(*g.caption)
		if err != nil {
			return s, "", err
		}
		if ok {
			s.Caption, s.HasCaption = captionText(data), true
		}
	}
	if g.meta != nil {
		data, ok, err := load(*g.meta)
		if err != nil {
			return s, "", err
		}
		if ok {
			s.Meta = metaJSON(data)
		}
	}
	if len(g.images) > 0 {
		img := g.images[0]
		member, s.ImageName, s.HasImage = img.name, img.name, true
		if s.Reject == "" && len(g.images) > 1 {
			s.Reject, s.Detail = ReasonDuplicateMember,
				fmt.Sprintf("files %s and %s are both the image of %s", img.name, g.images[1].name, g.stem)
		}
		if s.Reject == "" {
			data, ok, err := load(img)
			if err != nil {
				return s, "", err
			}
			if ok {
				s.Image = data
			}
		}
	}
	switch {
	case s.Reject != "":
	case g.extraCaption != "":
		s.Reject, s.Detail = ReasonDuplicateMember,
			fmt.Sprintf("files %s and %s are both the caption of %s", g.caption.name, g.extraCaption, g.stem)
	case !s.HasImage:
		s.Reject, s.Detail = ReasonNoImage, "caption without an image file of the same stem"
	case !s.HasCaption:
		s.Reject, s.Detail = ReasonNoCaption, "no "+g.stem+".txt next to the image"
	}
	return s, member, nil
}

// isImageName reports whether a file name has an image extension.
func isImageName(name string) bool {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	return imageExts[ext]
}
