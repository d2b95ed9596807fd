package shards

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

// RetryOptions bound how object-store requests are retried. Buckets that
// OpenBucket and OpenDir open on a remote store (s3://, gs://, azblob://)
// retry transient faults (connection resets, timeouts, throttling, 5xx) with
// exponential backoff and jitter, resume a body cut mid-stream with a ranged
// read from the offset reached, and fail at once on permanent faults (access
// denied, no such key or bucket). The zero value gives the defaults.
//
// Reads and listings on s3:// are retried by this layer alone (the AWS
// SDK's own retries are turned off for them), so that a request that keeps
// failing costs Attempts tries and at most 3.75 s of backoff with the
// defaults. Other requests (attributes, deletes) keep the SDK's 3 tries
// inside each of this layer's, each try of this layer bounded by
// RequestTimeout. Uploads are not retried here: the SDK retries each
// request of an upload whole, and an upload that still fails is never
// committed, so its error reaches the caller and no partial object appears.
type RetryOptions struct {
	// Attempts is the most tries of one request, and the most consecutive
	// failed tries of a stream without progress (default 5; 1 disables
	// retries).
	Attempts int
	// BaseDelay is the backoff before the first retry (default 250 ms); it
	// doubles with every retry up to MaxDelay (default 5 s). Each wait is
	// drawn between half and all of that (jitter).
	BaseDelay, MaxDelay time.Duration
	// RequestTimeout bounds one small request (attributes, a listing page,
	// a delete) and one call of an upload's Write or Close, which may send
	// a part; an upload that runs past it is abandoned, uncommitted, and
	// its error returned (default 60 s).
	RequestTimeout time.Duration
	// StallTimeout aborts a read, and resumes it from the offset reached,
	// when no byte has arrived for that long, response headers included
	// (default 30 s).
	StallTimeout time.Duration
}

// Retry defaults (see RetryOptions).
const (
	DefaultRetryAttempts  = 5
	DefaultRetryBaseDelay = 250 * time.Millisecond
	DefaultRetryMaxDelay  = 5 * time.Second
	DefaultRequestTimeout = 60 * time.Second
	DefaultStallTimeout   = 30 * time.Second
)

// The reasons that RetryCounts counts faults by.
const (
	retryReasonStall       = "stall"        // nothing arrived for StallTimeout
	retryReasonTimeout     = "timeout"      // a request ran past RequestTimeout, or the network timed out
	retryReasonReset       = "reset"        // the connection broke (reset, cut short)
	retryReasonShort       = "short_body"   // the body ended cleanly but early
	retryReasonThrottled   = "throttled"    // 503 SlowDown, 429
	retryReasonServerError = "server_error" // other 5xx
	retryReasonOther       = "other"
)

// WithDefaults fills the zero fields of o with the defaults.
func (o RetryOptions) WithDefaults() RetryOptions {
	if o.Attempts <= 0 {
		o.Attempts = DefaultRetryAttempts
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = DefaultRetryBaseDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultRetryMaxDelay
	}
	if o.MaxDelay < o.BaseDelay {
		o.MaxDelay = o.BaseDelay
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	return o
}

// backoff is the wait before retry number n (1, 2, ...): BaseDelay doubled
// n-1 times, at most MaxDelay, drawn between half and all of it.
func (o RetryOptions) backoff(n int) time.Duration {
	d := o.BaseDelay
	for i := 1; i < n && d < o.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, o.MaxDelay)
	return d/2 + rand.N(d/2+1)
}

// RetryCounts counts what the retry layer did: requests retried, streams
// resumed from the offset reached, and the faults behind both by reason
// ("reset", "stall", "timeout", "throttled", "server_error", "short_body",
// "other"). It is safe for concurrent use.
type RetryCounts struct {
	mu      sync.Mutex
	retries int64
	resumes int64
	reasons map[string]int64
}

// Snapshot returns the counts so far.
func (c *RetryCounts) Snapshot() (retries, resumes int64, reasons map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retries, c.resumes, maps.Clone(c.reasons)
}

func (c *RetryCounts) add(resume bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if resume {
		c.resumes++
	} else {
		c.retries++
	}
	if c.reasons == nil {
		c.reasons = map[string]int64{}
	}
	c.reasons[reason]++
}

// retryScope is what a context carries for the retry layer.
type retryScope struct {
	opt    RetryOptions
	counts []*RetryCounts
}

type retryKey struct{}

func scopeOf(ctx context.Context) *retryScope {
	if s, ok := ctx.Value(retryKey{}).(*retryScope); ok {
		return s
	}
	return &retryScope{opt: RetryOptions{}.WithDefaults()}
}

// WithRetry returns a context under which remote buckets retry with opt
// (zero fields take the defaults) instead of the defaults. Counters set
// with WithRetryCounts on ctx are kept.
func WithRetry(ctx context.Context, opt RetryOptions) context.Context {
	s := *scopeOf(ctx)
	s.opt = opt.WithDefaults()
	return context.WithValue(ctx, retryKey{}, &s)
}

// WithRetryCounts returns a context under which every retry and resume is
// also counted in c, as well as in the counters of ctx.
func WithRetryCounts(ctx context.Context, c *RetryCounts) context.Context {
	s := *scopeOf(ctx)
	s.counts = append(s.counts[:len(s.counts):len(s.counts)], c)
	return context.WithValue(ctx, retryKey{}, &s)
}

func (s *retryScope) count(resume bool, reason string) {
	for _, c := range s.counts {
		c.add(resume, reason)
	}
}

// errStalled marks an attempt that the retry layer aborted itself because
// nothing arrived for StallTimeout (or a request ran past RequestTimeout).
var errStalled = errors.New("stalled")

// transient reports whether err is worth another try, and why. Permanent
// faults (not found, access denied, bad request) and the caller's own
// cancellation are not.
func transient(parent context.Context, err error) (bool, string) {
	if parent.Err() != nil {
		return false, ""
	}
	if errors.Is(err, errStalled) {
		return true, retryReasonStall
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.PermissionDenied, gcerrors.InvalidArgument,
		gcerrors.FailedPrecondition, gcerrors.AlreadyExists, gcerrors.Unimplemented:
		return false, ""
	}
	if c := httpStatus(err); c != 0 {
		switch {
		case c == 429 || c == 503:
			return true, retryReasonThrottled
		case c >= 500:
			return true, retryReasonServerError
		case c == 408:
			return true, retryReasonTimeout
		case c >= 400:
			return false, ""
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "connection reset"):
		return true, retryReasonReset
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return true, retryReasonTimeout
	case strings.Contains(err.Error(), "SlowDown") || gcerrors.Code(err) == gcerrors.ResourceExhausted:
		return true, retryReasonThrottled
	}
	return true, retryReasonOther
}

// httpStatus is the HTTP status an SDK's error carries (AWS, GCS, Azure),
// or 0.
func httpStatus(err error) int {
	var hs interface{ HTTPStatusCode() int }
	var ge *googleapi.Error
	var ae *azcore.ResponseError
	switch {
	case errors.As(err, &hs):
		return hs.HTTPStatusCode()
	case errors.As(err, &ge):
		return ge.Code
	case errors.As(err, &ae):
		return ae.StatusCode
	}
	return 0
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryCall runs one small request, each try bounded by RequestTimeout,
// until it succeeds, fails permanently or runs out of tries.
func retryCall[T any](ctx context.Context, what string, f func(ctx context.Context) (T, error)) (T, error) {
	s := scopeOf(ctx)
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeoutCause(oneAzureAttempt(ctx), s.opt.RequestTimeout, errStalled)
		v, err := f(actx)
		if err != nil && context.Cause(actx) == errStalled && ctx.Err() == nil {
			err = fmt.Errorf("%s: no answer in %v: %w", what, s.opt.RequestTimeout, errors.Join(errStalled, err))
		}
		cancel()
		if err == nil {
			return v, nil
		}
		ok, reason := transient(ctx, err)
		if errors.Is(err, errStalled) {
			reason = retryReasonTimeout
		}
		if !ok || n >= s.opt.Attempts {
			if ok {
				err = fmt.Errorf("%w (gave up after %d tries)", err, n)
			}
			return v, err
		}
		s.count(false, reason)
		if err := sleep(ctx, s.opt.backoff(n)); err != nil {
			return v, err
		}
	}
}
