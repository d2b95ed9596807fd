package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/kediff/kediff/internal/rss"
	"github.com/kediff/kediff/metrics"
	"github.com/kediff/kediff/pipelines"
)

func init() {
	register("preprocess", "stream image-text pairs from blob storage into Parquet training shards", runPreprocess)
}

func runPreprocess(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("preprocess", flag.ContinueOnError)
	input := fs.String("input", "", "input shards: a URL, folder, glob (*.tar) or brace pattern ({00000..00099}.tar); plain paths mean file://")
	output := fs.String("output", "", "output folder URL for the Parquet shards (file://, s3://, gs://, azblob://, mem://, or a path)")
	config := fs.String("config", "", "YAML/JSON config file over the defaults (see README)")
	worker := fs.Int("worker", -1, "this worker's index, 0-based (default: $JOB_COMPLETION_INDEX, $SLURM_ARRAY_TASK_ID, or 0)")
	workers := fs.Int("workers", -1, "number of workers splitting the input shards (default: $SLURM_ARRAY_TASK_COUNT or 1)")
	var posDicts stringList
	fs.Var(&posDicts, "pos-dict", "user dictionary for the POS tagger, one \"word freq tag\" a line (repeatable; adds to pos.user_dicts)")
	library := fs.String("onnxruntime", "", "onnxruntime shared library for the model stages (overrides onnx.library; default: $KEDIFF_ONNXRUNTIME, then the bundled one, then the system's)")
	cuda := fs.Bool("cuda", false, "run the model stages on CUDA (sets onnx.cuda; needs a GPU build of onnxruntime)")
	retries := fs.Int("store-attempts", 0, "tries per object-store request before a transient fault fails the run (overrides store.attempts; default 5)")
	timeout := fs.Duration("store-timeout", 0, "time limit of one object-store request (overrides store.request_timeout; default 60s)")
	stall := fs.Duration("store-stall-timeout", 0, "a read that delivers no byte for this long is aborted and resumed (overrides store.stall_timeout; default 30s)")
	quiet := fs.Bool("quiet", false, "no progress bar, for batch jobs (logs still go to stderr)")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	mflags := metrics.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *input == "" || *output == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("need --input and --output (and no positional arguments)")
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := pipelines.LoadConfig(*config)
	if err != nil {
		return err
	}
	cfg.POS.UserDicts = append(cfg.POS.UserDicts, posDicts...)
	if *library != "" {
		cfg.ONNX.Library = *library
	}
	if *cuda {
		cfg.ONNX.CUDA = true
	}
	// Flags set on the command line override the config's store section
	// (Preprocess checks the values).
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "store-attempts":
			cfg.Store.Attempts = *retries
		case "store-timeout":
			cfg.Store.RequestTimeout = *timeout
		case "store-stall-timeout":
			cfg.Store.StallTimeout = *stall
		}
	})
	split, err := pipelines.SplitFromEnv(*worker, *workers, os.Getenv)
	if err != nil {
		return err
	}
	opt := pipelines.PreprocessOptions{
		Input:  *input,
		Output: *output,
		Config: cfg,
		Split:  split,
		Logger: log,
	}
	if !*quiet {
		opt.Progress = os.Stderr
	}
	var labels map[string]string // the workers of a split push separate groups
	if split.Count > 1 {
		labels = map[string]string{"worker": strconv.Itoa(split.Index)}
	}
	mjob, err := mflags.Start("kediff_preprocess", labels, log)
	if err != nil {
		return err
	}
	if mjob != nil {
		opt.Observer = metrics.NewPreprocess(mjob.Registerer, log)
	}
	sum, err := pipelines.Preprocess(ctx, opt)
	mjob.End(err)
	if err != nil {
		return err
	}
	log.Info("preprocess: done", "shards_written", sum.Processed, "shards_skipped", sum.Skipped,
		"samples", sum.Read, "rows", sum.Written, "rejects", sum.Rejected,
		"store_retries", sum.Retries, "store_resumes", sum.Resumes,
		"seconds", sum.Duration.Seconds(), "peak_rss_mib", rss.PeakMiB())
	return nil
}

// newLogger builds the stderr logger all subcommands share.
func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	hopt := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, hopt)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, hopt)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
