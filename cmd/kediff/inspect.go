package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kediff/kediff/inspect"
)

func init() {
	register("inspect", "write a self-contained HTML report on training shards: overlays, captions, POS, distributions, rejects", runInspect)
}

func runInspect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	output := fs.String("output", "", "the HTML report to write (path or blob URL)")
	keys := fs.String("keys", "", "comma-separated sample keys to show, instead of a spread sample")
	sample := fs.Int("sample", inspect.DefaultSample, "how many samples to show, spread evenly over the rows (0: none)")
	pngDir := fs.String("png", "", "also write each shown sample's overlay to this folder as KEY.png")
	quiet := fs.Bool("quiet", false, "no summary line on stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kediff inspect SHARD_URL --output report.html [--sample N | --keys K,...] [--png DIR]\n\n"+
			"SHARD_URL is a folder of kediff shards (kediff preprocess --output) or one NNNNN.parquet,\n"+
			"as a path or blob URL (file://, s3://, gs://, azblob://). The report is one HTML file with\n"+
			"everything inline; it opens from disk with no network.\n\nflags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("want one SHARD_URL, got %d arguments", len(pos))
	}
	if *output == "" {
		return errors.New("--output is required (the report's file, e.g. --output report.html)")
	}
	if *sample < 0 {
		return fmt.Errorf("--sample %d: want 0 or more", *sample)
	}
	opt := inspect.Options{Sample: *sample, PNGDir: *pngDir}
	if *sample == 0 {
		opt.Sample = -1 // none
	}
	for _, k := range strings.Split(*keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			opt.Keys = append(opt.Keys, k)
		}
	}
	sum, err := inspect.WriteFile(ctx, pos[0], *output, opt)
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "kediff inspect: %s: %d shards, %d rows, %d rejects; samples shown: %d", *output, sum.Shards, sum.Rows, sum.Rejects, sum.Shown)
		if len(sum.PNGs) > 0 {
			fmt.Fprintf(os.Stderr, " (overlays in %s)", *pngDir)
		}
		fmt.Fprintln(os.Stderr)
		if len(sum.Absent) > 0 {
			fmt.Fprintf(os.Stderr, "kediff inspect: absent columns (not shown): %s\n", strings.Join(sum.Absent, ", "))
		}
	}
	return nil
}
