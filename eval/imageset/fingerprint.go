package imageset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"gocloud.dev/blob"

	"github.com/kediff/kediff/shards"
)

// Fingerprint returns a hash of the set's listing: the kind, and the name,
// size, modification time and checksum (where the store keeps one) of every
// file the set reads: a sample folder's files, each input shard, each image
// folder's files. Equal fingerprints mean the set has not changed as far as
// a listing can tell, without reading any image; a cache of what was
// computed from a set keys on it.
func (s *Set) Fingerprint(ctx context.Context) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "imageset v1 %s\n", s.kind)
	var err error
	if s.kind == KindSamples {
		err = listFolder(ctx, h, s.url)
	} else {
		for _, in := range s.inputs {
			if in.Format == shards.FormatFolder {
				err = listFolder(ctx, h, in.URL)
			} else {
				err = listObject(ctx, h, in.URL)
			}
			if err != nil {
				break
			}
			fmt.Fprintf(h, "caption column %q\n", in.opt.CaptionColumn)
		}
	}
	if err != nil {
		return "", fmt.Errorf("imageset: %s: listing: %w", s.url, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeAttrs(h hash.Hash, name string, size int64, mod int64, md5 []byte) {
	fmt.Fprintf(h, "%q %d %d %x\n", name, size, mod, md5)
}

// listFolder writes the listing of the files directly in the folder url.
func listFolder(ctx context.Context, h hash.Hash, url string) error {
	b, err := shards.OpenDir(ctx, url, false)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(h, "folder %q\n", url)
	it := b.List(&blob.ListOptions{Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !obj.IsDir {
			writeAttrs(h, obj.Key, obj.Size, obj.ModTime.UnixNano(), obj.MD5)
		}
	}
}

// listObject writes the attributes of the one file url.
func listObject(ctx context.Context, h hash.Hash, url string) error {
	b, key, err := object(ctx, url)
	if err != nil {
		return err
	}
	defer b.Close()
	a, err := b.Attributes(ctx, key)
	if err != nil {
		return err
	}
	writeAttrs(h, url, a.Size, a.ModTime.UnixNano(), a.MD5)
	return nil
}
