package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kediff/kediff/repro"
)

func init() {
	register("repro", "run the toy-scale reproduction of ERNIE-ViLG 2.0's ablations (knowledge, experts) and write REPRO.md", runRepro)
}

func runRepro(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("repro", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "the minutes-long smoke run (tiny data and steps; its numbers mean nothing)")
	config := fs.String("config", "", "a JSON config over the full run's defaults (see repro.Config)")
	dir := fs.String("dir", "", "run folder: data, models, results (default out/repro, or .cache/repro-quick with --quick); a rerun resumes")
	report := fs.String("report", "", "folder for REPRO.md and repro/figures (default: the repository root, or the run folder with --quick)")
	repo := fs.String("repo", ".", "repository root: the fixture models and configs are resolved against it")
	quiet := fs.Bool("quiet", false, "no per-stage log lines")
	dev := addDeviceFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := repro.FullConfig()
	if *quick {
		cfg = repro.QuickConfig()
	}
	if *config != "" {
		if *quick {
			return fmt.Errorf("--config and --quick: give one")
		}
		var err error
		if cfg, err = repro.ReadConfig(*config); err != nil {
			return err
		}
	}
	if *dir == "" {
		*dir = "out/repro"
		if *quick {
			*dir = ".cache/repro-quick"
		}
	}
	if *report == "" {
		*report = *repo
		if *quick {
			*report = *dir
		}
	}
	if _, err := os.Stat(filepath.Join(*repo, "detect", "testdata")); err != nil {
		return fmt.Errorf("--repo %s does not look like the kediff repository (no detect/testdata): run from the checkout or give --repo", *repo)
	}
	be, err := dev.open()
	if err != nil {
		return err
	}
	opt := repro.Options{Dir: *dir, Repo: *repo, Report: *report, Quick: *quick, Backend: be, Command: "kediff repro " + strings.Join(args, " ")}
	if !*quiet {
		opt.Log = os.Stderr
	}
	if err := repro.Run(ctx, cfg, opt); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kediff repro: wrote %s\n", filepath.Join(*report, "REPRO.md"))
	return nil
}
