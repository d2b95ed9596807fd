package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kediff/kediff/dist"
)

// arCase is one message of part 1: elems values of float32 or bf16.
type arCase struct {
	bf16  bool
	elems int
	label string // the size column
}

func (c arCase) bytes() int64 {
	if c.bf16 {
		return 2 * int64(c.elems)
	}
	return 4 * int64(c.elems)
}

func (c arCase) dtype() string {
	if c.bf16 {
		return "bf16"
	}
	return "fp32"
}

// arg is the case as the ranks receive it.
func (c arCase) arg() string { return c.dtype() + ":" + strconv.Itoa(c.elems) }

// reps is how many calls of c are timed: more for small messages, whose
// times are short and noisy.
func (c arCase) reps(base int) int {
	if c.bytes() < 1<<20 {
		return 5 * base
	}
	return base
}

// ladder is part 1's cases: float32 sums from minBytes in x4 steps up to
// maxBytes (which is always included), then the gradients of params
// parameters in float32 and bf16.
func ladder(minBytes, maxBytes int64, params int) []arCase {
	var cs []arCase
	add := func(b int64) {
		cs = append(cs, arCase{elems: int(b / 4), label: byteSize(b)})
	}
	b := max(4, minBytes/4*4)
	for ; b < maxBytes; b *= 4 {
		add(b)
	}
	if maxBytes >= 4 {
		add(maxBytes / 4 * 4)
	}
	g := fmt.Sprintf("%.1f MB (gradients)", 4*float64(params)/1e6)
	cs = append(cs, arCase{elems: params, label: g})
	cs = append(cs, arCase{bf16: true, elems: params, label: fmt.Sprintf("%.1f MB (gradients)", 2*float64(params)/1e6)})
	return cs
}

// byteSize writes b in KiB or MiB.
func byteSize(b int64) string {
	switch {
	case b >= 1<<20:
		return strconv.FormatFloat(float64(b)/(1<<20), 'g', 4, 64) + " MiB"
	case b >= 1<<10:
		return strconv.FormatFloat(float64(b)/(1<<10), 'g', 4, 64) + " KiB"
	}
	return strconv.FormatInt(b, 10) + " B"
}

func parseCases(s string) ([]arCase, error) {
	var cs []arCase
	for _, f := range strings.Split(s, ",") {
		dt, n, ok := strings.Cut(f, ":")
		elems, err := strconv.Atoi(n)
		if !ok || err != nil || elems <= 0 || (dt != "fp32" && dt != "bf16") {
			return nil, fmt.Errorf("case %q: want fp32:ELEMENTS or bf16:ELEMENTS", f)
		}
		cs = append(cs, arCase{bf16: dt == "bf16", elems: elems})
	}
	return cs, nil
}

// rankOptions are what a rank of part 1 gets from its command line.
type rankOptions struct {
	kind, sizes, result string
	reps, warmup        int
}

// rankTimes is what each rank writes: the seconds of every timed call, by case.
type rankTimes struct {
	Rank, World int
	Comm        string
	Times       [][]float64
}

// runRank is one rank of part 1: it joins the job over o.kind, then for each
// case makes o.warmup untimed calls and the timed ones, each after a Barrier
// (so the ranks start together), and writes its times to o.result.RANK.
func runRank(o rankOptions) error {
	cases, err := parseCases(o.sizes)
	if err != nil {
		return err
	}
	info, err := dist.Discover(nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var c dist.Comm
	switch o.kind {
	case "tcp":
		c, err = dist.DialTCP(ctx, info, dist.TCPOptions{JobID: "bench-dist"})
	case "mpi":
		c, err = dist.DialMPI(info, dist.MPIOptions{})
	default:
		err = fmt.Errorf("-rank-of %q: want tcp or mpi", o.kind)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	var nf, nh int
	for _, cs := range cases {
		if cs.bf16 {
			nh = max(nh, cs.elems)
		} else {
			nf = max(nf, cs.elems)
		}
	}
	// Zeros: the sums stay zero, so no call meets infinities or subnormals.
	f, h := make([]float32, nf), make([]uint16, nh)
	out := rankTimes{Rank: c.Rank(), World: c.Size(), Comm: o.kind, Times: make([][]float64, len(cases))}
	for i, cs := range cases {
		call := func() error {
			if cs.bf16 {
				return c.AllReduceSumBF16(h[:cs.elems])
			}
			return c.AllReduceSum(f[:cs.elems])
		}
		for range o.warmup {
			if err := call(); err != nil {
				return err
			}
		}
		for range cs.reps(o.reps) {
			if err := c.Barrier(); err != nil {
				return err
			}
			t0 := time.Now()
			if err := call(); err != nil {
				return err
			}
			out.Times[i] = append(out.Times[i], time.Since(t0).Seconds())
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return os.WriteFile(fmt.Sprintf("%s.%d", o.result, out.Rank), b, 0o644)
}

// allReduceResult is one row of part 1.
type allReduceResult struct {
	comm         string
	c            arCase
	world        int
	median, best float64 // seconds
	algbw, busbw float64 // bytes per second
}

// partAllReduce runs part 1 over each communicator and prints its table.
func partAllReduce(ctx context.Context, o options, comms []string, params int, dir string) ([]allReduceResult, error) {
	cases := ladder(int64(o.minKiB*1024), int64(o.maxMiB*(1<<20)), params)
	args := make([]string, len(cases))
	for i, c := range cases {
		args[i] = c.arg()
	}
	fmt.Printf("## Part 1: all-reduce time against message size (2 ranks, 2 OS processes, GOMAXPROCS=1 each)\n\n")
	var rows []allReduceResult
	var notes []string
	for _, comm := range comms {
		start := time.Now()
		res, err := allReduceJob(ctx, o, comm, strings.Join(args, ","), dir)
		if errors.Is(err, errSkip) {
			notes = append(notes, fmt.Sprintf("%s: skipped: %v", comm, err))
			fmt.Printf("%s: skipped: %v\n", comm, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		fmt.Printf("%s: %d cases in %.0f s\n", commName(comm), len(cases), time.Since(start).Seconds())
		for i, c := range cases {
			// A call's time is the slower rank's.
			var per []float64
			for rep := range res[0].Times[i] {
				t := 0.0
				for _, r := range res {
					t = max(t, r.Times[i][rep])
				}
				per = append(per, t)
			}
			med := median(per)
			world := res[0].World
			alg := float64(c.bytes()) / med
			rows = append(rows, allReduceResult{comm: comm, c: c, world: world, median: med, best: slices.Min(per),
				algbw: alg, busbw: alg * 2 * float64(world-1) / float64(world)})
		}
	}
	copyS := copyTime(params)
	fmt.Printf("\nanchor: one process copies the %.1f MB of float32 gradients in %.2f ms (%.2f GB/s, Go copy, median of 5)\n\n",
		4*float64(params)/1e6, copyS*1e3, 4*float64(params)/copyS/1e9)
	fmt.Println("| communicator | dtype | size | median ms [best] | algbw GB/s | busbw GB/s | timed calls |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s [%s] | %.3f | %.3f | %d |\n", commName(r.comm), r.c.dtype(), r.c.label,
			ms(r.median), ms(r.best), r.algbw/1e9, r.busbw/1e9, r.c.reps(o.reps))
	}
	fmt.Printf("\nEach size: %d untimed calls, then the timed ones, each after a Barrier so the ranks start together; a call's time is the slower rank's; median [best] of the calls. ", o.warmup)
	fmt.Printf("algbw = bytes / time, busbw = algbw x 2(n-1)/n (n = 2: the same), as nccl-tests defines them; GB = 1e9 bytes. " +
		"bf16 rows count 2 bytes a value, as handed to AllReduceSumBF16; DialTCP and DialMPI widen bf16 to float32 on the wire " +
		"(Open MPI 4.1 has no bf16 type), so they move 4 bytes a value plus the conversions.\n")
	for _, n := range notes {
		fmt.Println(n)
	}
	fmt.Println()
	return rows, nil
}

func commName(comm string) string {
	switch comm {
	case "tcp":
		return "TCP (dist.DialTCP, star through rank 0)"
	case "mpi":
		return "MPI (dist.DialMPI, Open MPI)"
	}
	return comm
}

func ms(s float64) string {
	switch {
	case s < 0.01:
		return fmt.Sprintf("%.3f", s*1e3)
	case s < 1:
		return fmt.Sprintf("%.2f", s*1e3)
	}
	return fmt.Sprintf("%.0f", s*1e3)
}

// errSkip marks a part that cannot run on this machine.
var errSkip = errors.New("skip")

type skipError struct{ why string }

func (e skipError) Error() string        { return e.why }
func (e skipError) Is(target error) bool { return target == errSkip }

// mpiMissing says why mpirun -np 2 cannot run here, or "" where it can.
func mpiMissing() string {
	if _, err := exec.LookPath("mpirun"); err != nil {
		return "mpirun not found (go tool task setup installs Debian's openmpi-bin)"
	}
	if err := dist.MPIAvailable(); err != nil {
		return err.Error()
	}
	return ""
}

// allReduceJob starts two ranks of this program over comm and reads their
// times.
func allReduceJob(ctx context.Context, o options, comm, cases, dir string) ([]rankTimes, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	result := filepath.Join(dir, "allreduce-"+comm)
	args := []string{"-rank-of", comm, "-rank-sizes", cases, "-rank-result", result,
		"-reps", strconv.Itoa(o.reps), "-warmup", strconv.Itoa(o.warmup)}
	threads := []string{"GOMAXPROCS=1", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1"}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	switch comm {
	case "tcp":
		if _, err := runTorchrun(ctx, exe, args, threads, 2); err != nil {
			return nil, err
		}
	case "mpi":
		if why := mpiMissing(); why != "" {
			return nil, skipError{why}
		}
		if _, err := runMPI(ctx, exe, args, threads, 2); err != nil {
			return nil, err
		}
	}
	var out []rankTimes
	for r := range 2 {
		b, err := os.ReadFile(fmt.Sprintf("%s.%d", result, r))
		if err != nil {
			return nil, fmt.Errorf("%s: rank %d wrote no times: %w", comm, r, err)
		}
		var t rankTimes
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("%s: rank %d: %w", comm, r, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// launcherPrefixes are the variables dist.Discover reads: dropped from the
// environment so a run under another launcher still starts a clean job.
var launcherPrefixes = []string{"OMPI_", "PMIX_", "SLURM_", "PMI_", "MPI_LOCAL", "TORCHELASTIC_",
	"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="}

// cleanEnv is this process's environment without launcher variables and
// with the given threads settings replacing any there.
func cleanEnv(set []string) []string {
	var keep []string
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range launcherPrefixes {
			drop = drop || strings.HasPrefix(kv, p)
		}
		for _, s := range set {
			name, _, _ := strings.Cut(s, "=")
			drop = drop || strings.HasPrefix(kv, name+"=")
		}
		// Open MPI's own settings (OMPI_MCA_*) are the user's: keep them.
		if strings.HasPrefix(kv, "OMPI_MCA_") {
			drop = false
		}
		if !drop {
			keep = append(keep, kv)
		}
	}
	return append(keep, set...)
}

// freePort is a TCP port free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// runTorchrun starts world processes of exe with torchrun's variables for
// one machine (none for a world of one), waits for all of them, and returns rank 0's output.
func runTorchrun(ctx context.Context, exe string, args, env []string, world int) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	cmds := make([]*exec.Cmd, world)
	outs := make([]*bytes.Buffer, world)
	for r := range world {
		c := exec.CommandContext(ctx, exe, args...)
		c.Env = cleanEnv(env)
		if world > 1 {
			c.Env = append(c.Env, fmt.Sprint("RANK=", r), fmt.Sprint("WORLD_SIZE=", world), fmt.Sprint("LOCAL_RANK=", r),
				fmt.Sprint("LOCAL_WORLD_SIZE=", world), "MASTER_ADDR=127.0.0.1", fmt.Sprint("MASTER_PORT=", port))
		}
		outs[r] = new(bytes.Buffer)
		c.Stdout, c.Stderr = outs[r], outs[r]
		if err := c.Start(); err != nil {
			for _, p := range cmds[:r] {
				p.Process.Kill()
				p.Wait()
			}
			return "", err
		}
		cmds[r] = c
	}
	var errs []error
	for r, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("rank %d of %d (%s %s): %v\n%s", r, world, filepath.Base(exe), strings.Join(args, " "), err, outs[r]))
		}
	}
	return outs[0].String(), errors.Join(errs...)
}

// runMPI runs exe under mpirun -np world and returns mpirun's output.
func runMPI(ctx context.Context, exe string, args, env []string, world int) (string, error) {
	margs := []string{"--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(world)}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		margs = append(margs, "-x", name)
	}
	c := exec.CommandContext(ctx, "mpirun", append(append(margs, exe), args...)...)
	c.Env = cleanEnv(env)
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) } // mpirun then ends its ranks
	c.WaitDelay = 10 * time.Second
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("mpirun -np %d %s %s: %v\n%s", world, filepath.Base(exe), strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// copyTime is the median time of 5 copies of params float32 values.
func copyTime(params int) float64 {
	src, dst := make([]float32, params), make([]float32, params)
	for i := range src {
		src[i] = float32(i)
	}
	copy(dst, src)
	var ts []float64
	for range 5 {
		t0 := time.Now()
		copy(dst, src)
		ts = append(ts, time.Since(t0).Seconds())
	}
	return median(ts)
}

// median of v (NaN for none).
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
