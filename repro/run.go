package repro

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/onnx"
)

// Options say where a run keeps its work and where the report goes.
type Options struct {
	// Dir holds the run's data, models, results and grids; a rerun resumes
	// from what it finds there.
	Dir string
	// Repo is the repository root that the config's relative paths (models,
	// configs) are resolved against.
	Repo string
	// Report is the folder REPRO.md and its figures are written to (the
	// figures in Report/repro/figures). Empty: Dir.
	Report string
	// Quick marks the smoke run: the report says its numbers mean nothing.
	Quick bool
	// Command is the command line to print in the report.
	Command string
	// Backend trains and samples the models (nil: the CPU kernels).
	Backend kernels.Backend
	// Log receives one line per finished stage (nil: none).
	Log io.Writer
}

type run struct {
	cfg   Config
	opt   Options
	start time.Time
}

// Run does the whole reproduction and writes the report.
func Run(ctx context.Context, cfg Config, opt Options) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if opt.Dir == "" {
		return fmt.Errorf("repro: no run folder")
	}
	if opt.Report == "" {
		opt.Report = opt.Dir
	}
	r := &run{cfg: cfg, opt: opt, start: time.Now()}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return err
	}
	input, err := r.trainInput(ctx)
	if err != nil {
		return err
	}
	data := map[string]string{}
	for _, k := range knowledgeSets {
		if data[k.Name], err = r.preprocess(ctx, input, k); err != nil {
			return err
		}
	}
	if err := r.vocab(ctx, data["all"]); err != nil {
		return err
	}
	vs := r.variants()
	for _, v := range vs {
		if err := r.trainModels(ctx, v, data[v.Data.Name]); err != nil {
			return err
		}
	}
	held := r.heldOut()
	e, err := r.newEvaluator(held)
	if err != nil {
		return err
	}
	defer e.close()
	var results []VariantResult
	for _, v := range vs {
		res, err := r.evaluate(ctx, e, v)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return r.report(results, held)
}

func (r *run) path(parts ...string) string {
	return filepath.Join(append([]string{r.opt.Dir}, parts...)...)
}

func (r *run) repo(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.opt.Repo, p)
}

func (r *run) onnxOptions() onnx.SessionOptions { return onnx.SessionOptions{IntraOpThreads: 2} }

func (r *run) quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (r *run) now() time.Time { return time.Now() }

func (r *run) since(t time.Time) string { return time.Since(t).Round(time.Second).String() }

// logf reports a finished stage and appends it to the run's log.txt, which
// the report quotes (so a resumed run still reports every stage's time).
func (r *run) logf(format string, args ...any) {
	line := fmt.Sprintf("repro [%s] %s", time.Since(r.start).Round(time.Second), fmt.Sprintf(format, args...))
	if r.opt.Log != nil {
		fmt.Fprintln(r.opt.Log, line)
	}
	if f, err := os.OpenFile(r.path("log.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
		f.Close()
	}
}
