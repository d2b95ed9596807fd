package shards

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// retryBucket is a driver.Bucket over a remote bucket that retries its
// requests and resumes its reads (see RetryOptions); the options and the
// counters come from each call's context (WithRetry, WithRetryCounts).
type retryBucket struct {
	root *blob.Bucket
}

func newRetryBucket(root *blob.Bucket) *blob.Bucket {
	return blob.NewBucket(&retryBucket{root: root})
}

func (b *retryBucket) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }
func (b *retryBucket) As(i any) bool                          { return b.root.As(i) }
func (b *retryBucket) ErrorAs(err error, i any) bool          { return b.root.ErrorAs(err, i) }
func (b *retryBucket) Close() error                           { return b.root.Close() }

// driverAttributes hands a bucket's attributes back to the portable type
// as a driver's (the wrapping drivers here sit on a *blob.Bucket).
func driverAttributes(a *blob.Attributes) *driver.Attributes {
	return &driver.Attributes{
		CacheControl:       a.CacheControl,
		ContentDisposition: a.ContentDisposition,
		ContentEncoding:    a.ContentEncoding,
		ContentLanguage:    a.ContentLanguage,
		ContentType:        a.ContentType,
		Metadata:           a.Metadata,
		CreateTime:         a.CreateTime,
		ModTime:            a.ModTime,
		Size:               a.Size,
		MD5:                a.MD5,
		ETag:               a.ETag,
		AsFunc:             a.As,
	}
}

func (b *retryBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := retryCall(ctx, "attributes of "+key, func(ctx context.Context) (*blob.Attributes, error) {
		return b.root.Attributes(ctx, key)
	})
	if err != nil {
		return nil, err
	}
	return driverAttributes(a), nil
}

func (b *retryBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token, size := opts.PageToken, opts.PageSize
	if len(token) == 0 {
		token = blob.FirstPageToken // drivers get nil for the first page
	}
	if size <= 0 {
		size = 1000
	}
	type page struct {
		objs []*blob.ListObject
		next []byte
	}
	p, err := retryCall(ctx, "list "+opts.Prefix, func(ctx context.Context) (page, error) {
		objs, next, err := b.root.ListPage(ctx, token, size,
			&blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter, BeforeList: oneSDKAttempt})
		return page{objs, next}, err
	})
	if err != nil {
		return nil, err
	}
	out := &driver.ListPage{NextPageToken: p.next}
	for _, o := range p.objs {
		out.Objects = append(out.Objects, &driver.ListObject{
			Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir, AsFunc: o.As,
		})
	}
	return out, nil
}

func (b *retryBucket) Copy(ctx context.Context, dstKey, srcKey string, _ *driver.CopyOptions) error {
	_, err := retryCall(ctx, "copy "+srcKey, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.root.Copy(ctx, dstKey, srcKey, nil)
	})
	return err
}

func (b *retryBucket) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	_, err := retryCall(ctx, "delete "+key, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.root.Delete(ctx, key)
	})
	return err
}

func (b *retryBucket) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	return b.root.SignedURL(ctx, key, &blob.SignedURLOptions{
		Expiry: opts.Expiry, Method: opts.Method, ContentType: opts.ContentType,
		EnforceAbsentContentType: opts.EnforceAbsentContentType,
	})
}

// NewTypedWriter passes writes through: an upload is committed only by a
// successful Close, so a failed one leaves no object behind. A Write or
// Close that makes no progress for RequestTimeout cancels the upload
// (nothing is committed) and fails, rather than hanging.
func (b *retryBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	s := scopeOf(ctx)
	wctx, cancel := context.WithCancelCause(ctx)
	w, err := b.root.NewWriter(wctx, key, &blob.WriterOptions{
		BufferSize:                  opts.BufferSize,
		MaxConcurrency:              opts.MaxConcurrency,
		CacheControl:                opts.CacheControl,
		ContentDisposition:          opts.ContentDisposition,
		ContentEncoding:             opts.ContentEncoding,
		ContentLanguage:             opts.ContentLanguage,
		ContentType:                 contentType,
		DisableContentTypeDetection: true,
		ContentMD5:                  opts.ContentMD5,
		Metadata:                    opts.Metadata,
		BeforeWrite:                 opts.BeforeWrite,
		IfNotExist:                  opts.IfNotExist,
	})
	if err != nil {
		cancel(nil)
		return nil, err
	}
	return &watchedWriter{w: w, key: key, cancel: cancel, ctx: wctx, limit: s.opt.RequestTimeout}, nil
}

// oneSDKAttempt turns the SDKs' own retries off for one GET or list
// request: this layer retries them, with each try's time limit covering
// one HTTP exchange (an SDK would otherwise spend its backoff, up to
// seconds, inside the StallTimeout of a read's start, and its retries would
// multiply ours and go uncounted). AWS takes it per request; GCS per object
// handle (reads only: its lists and attribute reads keep the client's
// retries); Azure from the context (oneAzureAttempt).
func oneSDKAttempt(as func(any) bool) error {
	var opts *[]func(*s3.Options)
	if as(&opts) {
		*opts = append(*opts, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	}
	var obj **storage.ObjectHandle
	if as(&obj) {
		*obj = (*obj).Retryer(storage.WithPolicy(storage.RetryNever))
	}
	return nil
}

// oneAzureAttempt is ctx for a request this layer retries, telling the Azure
// SDK to make one attempt (-1: no retries); other SDKs ignore the value.
// Uploads keep their SDK's retries: this layer does not retry a write.
func oneAzureAttempt(ctx context.Context) context.Context {
	return policy.WithRetryOptions(ctx, policy.RetryOptions{MaxRetries: -1})
}

// watchedWriter cancels its upload when one call blocks for longer than
// limit.
type watchedWriter struct {
	w      *blob.Writer
	key    string
	ctx    context.Context
	cancel context.CancelCauseFunc
	limit  time.Duration
}

func (w *watchedWriter) watch(f func() error) error {
	t := time.AfterFunc(w.limit, func() { w.cancel(errStalled) })
	err := f()
	t.Stop()
	if err != nil && context.Cause(w.ctx) == errStalled {
		return fmt.Errorf("write %s: no progress in %v, upload abandoned: %w", w.key, w.limit, errors.Join(errStalled, err))
	}
	return err
}

func (w *watchedWriter) Write(p []byte) (n int, err error) {
	err = w.watch(func() error {
		n, err = w.w.Write(p)
		return err
	})
	return n, err
}

func (w *watchedWriter) Close() error {
	err := w.watch(w.w.Close)
	w.cancel(nil)
	return err
}

// NewRangeReader opens a resuming reader: the open is retried like any
// request (with StallTimeout as its time limit: headers are bytes too), and
// a body that breaks off, or stalls for StallTimeout, is reopened at the
// offset reached.
func (b *retryBucket) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	r := &resumingReader{b: b, ctx: ctx, scope: scopeOf(ctx), key: key, pos: offset, length: length, start: offset}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// resumingReader reads a byte range of one object across as many requests
// as faults make necessary.
type resumingReader struct {
	b     *retryBucket
	ctx   context.Context
	scope *retryScope
	key   string

	start, length int64 // the range asked for (length -1: to the end)
	pos           int64 // the next offset to read
	end           int64 // the offset the range ends at, once known
	attrs         driver.ReaderAttributes

	cur     *blob.Reader // nil between attempts
	cancel  context.CancelCauseFunc
	actx    context.Context
	watch   *time.Timer
	reading atomic.Bool
}

// open makes the first request, retried (not resumed) on transient faults.
func (r *resumingReader) open() error {
	for n := 1; ; n++ {
		err := r.attempt()
		if err == nil {
			r.attrs = driver.ReaderAttributes{ContentType: r.cur.ContentType(), ModTime: r.cur.ModTime(), Size: r.cur.Size()}
			r.end = r.attrs.Size
			if r.length >= 0 {
				r.end = min(r.end, r.start+r.length)
			}
			return nil
		}
		ok, reason := transient(r.ctx, err)
		if !ok || n >= r.scope.opt.Attempts {
			if ok {
				err = fmt.Errorf("%w (gave up after %d tries)", err, n)
			}
			return err
		}
		r.scope.count(false, reason)
		if err := sleep(r.ctx, r.scope.opt.backoff(n)); err != nil {
			return err
		}
	}
}

// attempt opens the object at pos, waiting at most StallTimeout for the
// response headers.
func (r *resumingReader) attempt() error {
	actx, cancel := context.WithCancelCause(oneAzureAttempt(r.ctx))
	stall := r.scope.opt.StallTimeout
	t := time.AfterFunc(stall, func() { cancel(errStalled) })
	length := int64(-1)
	if r.length >= 0 {
		length = r.length - (r.pos - r.start)
	}
	rd, err := r.b.root.NewRangeReader(actx, r.key, r.pos, length, &blob.ReaderOptions{BeforeRead: oneSDKAttempt})
	t.Stop()
	if err != nil {
		if context.Cause(actx) == errStalled && r.ctx.Err() == nil {
			err = fmt.Errorf("open %s at %d: no response in %v: %w", r.key, r.pos, stall, errors.Join(errStalled, err))
		}
		cancel(nil)
		return err
	}
	r.cur, r.actx, r.cancel = rd, actx, cancel
	r.watch = time.AfterFunc(time.Hour, func() {
		if r.reading.Load() {
			cancel(errStalled)
		}
	})
	r.watch.Stop()
	return nil
}

func (r *resumingReader) closeCur() {
	if r.cur == nil {
		return
	}
	r.watch.Stop()
	r.cancel(nil)
	r.cur.Close()
	r.cur = nil
}

func (r *resumingReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	failed := 0 // tries in a row that brought no byte
	for {
		if r.cur == nil {
			if r.pos >= r.end {
				return 0, io.EOF
			}
			if err := r.reopen(); err != nil {
				return 0, err
			}
		}
		r.reading.Store(true)
		r.watch.Reset(r.scope.opt.StallTimeout)
		n, err := r.cur.Read(p)
		r.watch.Stop()
		r.reading.Store(false)
		r.pos += int64(n)
		if err == nil || (err == io.EOF && r.pos >= r.end) {
			if n == 0 && err == nil {
				continue
			}
			return n, err
		}
		reason := ""
		if err == io.EOF {
			reason = retryReasonShort // the body ended before the range did
		} else {
			if context.Cause(r.actx) == errStalled && r.ctx.Err() == nil {
				err = errors.Join(errStalled, err)
			}
			var ok bool
			if ok, reason = transient(r.ctx, err); !ok {
				r.closeCur()
				return n, err
			}
		}
		r.closeCur()
		if n > 0 {
			// Hand over what came; the next Read resumes.
			r.scope.count(true, reason)
			return n, nil
		}
		failed++
		if failed >= r.scope.opt.Attempts {
			return 0, fmt.Errorf("read %s: gave up at offset %d after %d tries without progress: %w", r.key, r.pos, failed, err)
		}
		r.scope.count(true, reason)
		if err := sleep(r.ctx, r.scope.opt.backoff(failed)); err != nil {
			return 0, err
		}
	}
}

// reopen opens the object again at pos, and checks that it is the same
// object.
func (r *resumingReader) reopen() error {
	var err error
	for n := 1; ; n++ {
		if err = r.attempt(); err == nil {
			break
		}
		ok, reason := transient(r.ctx, err)
		if !ok || n >= r.scope.opt.Attempts {
			return fmt.Errorf("read %s: resume at offset %d: %w", r.key, r.pos, err)
		}
		r.scope.count(false, reason)
		if err := sleep(r.ctx, r.scope.opt.backoff(n)); err != nil {
			return err
		}
	}
	if r.cur.Size() != r.attrs.Size || !r.cur.ModTime().Equal(r.attrs.ModTime) {
		r.closeCur()
		return fmt.Errorf("read %s: the object changed while being read (size %d -> %d); rerun the shard", r.key, r.attrs.Size, r.cur.Size())
	}
	return nil
}

func (r *resumingReader) Close() error {
	r.closeCur()
	return nil
}

func (r *resumingReader) Attributes() *driver.ReaderAttributes { return &r.attrs }

func (r *resumingReader) As(i any) bool {
	if r.cur == nil {
		return false
	}
	return r.cur.As(i)
}
