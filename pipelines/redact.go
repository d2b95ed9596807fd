package pipelines

import (
	"context"
	"log/slog"

	"github.com/kediff/kediff/shards"
)

// redactHandler scrubs the run's secrets (credentials in the input and output
// URLs, credential environment variables) out of every log record's message
// and string attributes before handing it to h.
type redactHandler struct {
	h   slog.Handler
	red *shards.Redactor
}

func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.red.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.red.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		as := make([]any, len(g))
		for i, x := range g {
			as[i] = r.attr(x)
		}
		return slog.Group(a.Key, as...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, r.red.String(err.Error()))
		}
		if s := v.String(); r.red.String(s) != s {
			return slog.String(a.Key, r.red.String(s))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (r *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.attr(a)
	}
	return &redactHandler{h: r.h.WithAttrs(out), red: r.red}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), red: r.red}
}
