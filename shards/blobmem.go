package shards

import (
	"context"
	"errors"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

var (
	memMu      sync.Mutex
	memBuckets = map[string]*blob.Bucket{}
)

// openSharedMem returns a new handle on the process-wide memory bucket
// called name, creating it on first use.
func openSharedMem(name string) *blob.Bucket {
	memMu.Lock()
	defer memMu.Unlock()
	root, ok := memBuckets[name]
	if !ok {
		root = memblob.OpenBucket(nil)
		memBuckets[name] = root
	}
	return blob.NewBucket(&memHandle{root: root})
}

// memHandle is a driver.Bucket that forwards to a shared memblob bucket
// through its public API; its Close leaves the shared bucket open.
type memHandle struct{ root *blob.Bucket }

func (h *memHandle) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }
func (h *memHandle) As(any) bool                            { return false }
func (h *memHandle) ErrorAs(error, any) bool                { return false }
func (h *memHandle) Close() error                           { return nil }

func (h *memHandle) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := h.root.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return driverAttributes(a), nil
}

func (h *memHandle) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token, size := opts.PageToken, opts.PageSize
	if len(token) == 0 {
		token = blob.FirstPageToken // drivers get nil for the first page
	}
	if size <= 0 {
		size = 1000
	}
	objs, next, err := h.root.ListPage(ctx, token, size,
		&blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{
			Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir,
		})
	}
	return page, nil
}

func (h *memHandle) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	r, err := h.root.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, err
	}
	return memReader{r}, nil
}

type memReader struct{ *blob.Reader }

func (r memReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.ContentType(), ModTime: r.ModTime(), Size: r.Size()}
}
func (r memReader) As(any) bool { return false }

func (h *memHandle) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	return h.root.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType:                 contentType,
		DisableContentTypeDetection: true,
		CacheControl:                opts.CacheControl,
		ContentDisposition:          opts.ContentDisposition,
		ContentEncoding:             opts.ContentEncoding,
		ContentLanguage:             opts.ContentLanguage,
		ContentMD5:                  opts.ContentMD5,
		Metadata:                    opts.Metadata,
		IfNotExist:                  opts.IfNotExist,
	})
}

func (h *memHandle) Copy(ctx context.Context, dstKey, srcKey string, _ *driver.CopyOptions) error {
	return h.root.Copy(ctx, dstKey, srcKey, nil)
}

func (h *memHandle) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	return h.root.Delete(ctx, key)
}

func (h *memHandle) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.New("shards: mem:// buckets have no signed URLs")
}
