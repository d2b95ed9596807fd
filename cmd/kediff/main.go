// Command kediff prepares image-text data with extracted knowledge and trains
// latent text-to-image diffusion models as a mixture of denoising experts.
//
// Each subcommand parses its flags and calls one package; see "kediff help".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/kediff/kediff/kernels/cuda"
)

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

// order is the order "kediff help" lists the commands in.
var order = []string{}

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{summary, run}
	order = append(order, name)
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: kediff <command> [flags]\n\ncommands:\n")
	for _, name := range order {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun \"kediff <command> -h\" for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "kediff: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startProfile(os.Getenv("KEDIFF_CPUPROFILE"))
	err := runCommand(ctx, cmd, os.Args[2:])
	stopProfile()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "kediff %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// runCommand runs cmd, turning a device failure (a *cuda.Error, which the
// Backend methods panic with) into the command's error.
func runCommand(ctx context.Context, cmd command, args []string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			e, ok := p.(*cuda.Error)
			if !ok {
				panic(p)
			}
			err = e
		}
	}()
	return cmd.run(ctx, args)
}

// startProfile writes a CPU profile of the whole command to path (from
// KEDIFF_CPUPROFILE; empty: none), for "go tool pprof". It returns the
// function that finishes the file.
func startProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kediff: KEDIFF_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
