package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kediff/kediff/dashboard"
)

func init() {
	register("dashboard", "put training runs (a base and its experts) on one HTML page: loss, grad norm, lr, throughput, latest sample grids", runDashboard)
}

func runDashboard(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	output := fs.String("output", "dashboard.html", "the HTML page to write (self-contained: opens from disk)")
	title := fs.String("title", "", "the page's title (default: kediff training: N runs)")
	smooth := fs.Float64("smooth", dashboard.DefaultSmooth, "EMA weight of the smoothed curves, in [0, 1) (TensorBoard's smoothing slider; 0: raw only)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kediff dashboard DIR... [--output dashboard.html] [--title T] [--smooth 0.9]\n"+
			"  DIR: a checkpoint folder (kediff train --out, with metrics.jsonl), or a folder whose subfolders are\n"+
			"  (out/train: base, expert-0, ...), e.g. kediff dashboard out/train/base out/train/expert-*")
		fs.PrintDefaults()
	}
	// Folders and flags in any order.
	var dirs []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(dirs) == 0 {
		fs.Usage()
		return errors.New("give at least one checkpoint folder")
	}
	if *smooth < 0 || *smooth >= 1 {
		return fmt.Errorf("--smooth %g: want a weight in [0, 1)", *smooth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	runs, err := dashboard.FindRuns(dirs)
	if err != nil {
		return err
	}
	opt := dashboard.Options{Title: *title, Smooth: *smooth}
	if *smooth == 0 {
		opt.Smooth = -1 // raw only
	}
	if err := dashboard.WriteFile(*output, runs, opt); err != nil {
		return err
	}
	names := make([]string, len(runs))
	for i, r := range runs {
		names[i] = r.Name
	}
	fmt.Fprintf(os.Stderr, "kediff dashboard: %d runs (%s) written to %s\n", len(runs), strings.Join(names, ", "), *output)
	return nil
}
