package dist

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mpiChildEnv makes TestMPIChild play one rank of a job under mpirun; its
// value names the scenario.
const mpiChildEnv = "KEDIFF_MPI_CHILD"

// needMPI returns mpirun's path. Where Open MPI is missing it skips the
// test with what to install, or fails it under CI (CI set), as pyref does
// for missing interpreters.
func needMPI(t *testing.T) string {
	t.Helper()
	if !mpiCgo {
		t.Skip("built without cgo: DialMPI cannot load Open MPI")
	}
	if testing.Short() {
		t.Skip("starts mpirun")
	}
	mpirun, err := exec.LookPath("mpirun")
	if err == nil {
		err = MPIAvailable()
	}
	if err == nil {
		return mpirun
	}
	msg := fmt.Sprintf("Open MPI is needed: %v; run go tool task setup (Debian's openmpi-bin)", err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestMPIJobs runs this test binary's TestMPIChild as the ranks of a job
// under mpirun, one scenario per case.
func TestMPIJobs(t *testing.T) {
	mpirun := needMPI(t)
	for _, tc := range []struct {
		name     string
		np       int
		scenario string
		limit    time.Duration
		ok       bool     // mpirun exits 0 and every rank prints "rank R: ok"
		want     []string // in mpirun's output
	}{
		{name: "collectives/2_ranks", np: 2, scenario: "collectives", limit: 2 * time.Minute, ok: true},
		{name: "collectives/3_ranks", np: 3, scenario: "collectives", limit: 2 * time.Minute, ok: true},
		{name: "dead_rank_ends_the_job", np: 2, scenario: "dead", limit: time.Minute, want: []string{
			"rank 1: exiting with status 3 before the collective",
			"mpirun detected that one or more processes exited with non-zero status",
			"Exit code:    3",
		}},
		{name: "numbering_differs_from_the_environment", np: 2, scenario: "mismatch", limit: time.Minute, want: []string{
			"DialMPI as rank 1 returned dist: MPI says this process is rank 0 of 2 but its launcher (openmpi) says rank 1 of 2: start every rank with mpirun",
			"Exit code:    6",
		}},
		{name: "stuck_rank_times_out", np: 2, scenario: "timeout", limit: time.Minute, want: []string{
			"rank 0: AllReduceSum failed: dist: MPI rank 0: AllReduceSum 1 timed out after 2s: a rank died or stopped; mpirun ends the job when a rank exits",
			"rank 0: the broken Comm repeats the error",
			"Exit code:    4",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, err := runMPI(mpirun, tc.np, tc.scenario, tc.limit)
			took := time.Since(start)
			t.Logf("mpirun -np %d (%s) took %v", tc.np, tc.scenario, took.Round(time.Millisecond))
			switch {
			case took >= tc.limit:
				t.Fatalf("mpirun did not end within %v (a rank hung):\n%s", tc.limit, out)
			case tc.ok && err != nil:
				t.Fatalf("mpirun: %v\n%s", err, out)
			case !tc.ok && err == nil:
				t.Fatalf("mpirun exited 0, want a failed job:\n%s", out)
			}
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("mpirun: %v\n%s", err, out)
			}
			if tc.ok {
				for r := range tc.np {
					if !strings.Contains(out, fmt.Sprintf("rank %d: ok\n", r)) {
						t.Errorf("rank %d did not print %q", r, "ok")
					}
				}
			} else if strings.Contains(out, ": ok\n") {
				t.Errorf("a rank of the failed job printed ok")
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("mpirun's output:\n%s", out)
			}
		})
	}
}

// runMPI runs np ranks of TestMPIChild playing scenario and returns
// mpirun's combined output.
func runMPI(mpirun string, np int, scenario string, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpirun, "--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(np),
		os.Args[0], "-test.run=^TestMPIChild$", "-test.count=1", "-test.timeout=3m")
	// A clean job even under another launcher, but the user's MCA settings kept.
	cmd.Env = append(withoutLaunchers(os.Environ()), mpiChildEnv+"="+scenario)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OMPI_MCA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // mpirun then ends its ranks
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestMPIChild is one rank of TestMPIJobs' jobs; without mpiChildEnv it
// skips.
func TestMPIChild(t *testing.T) {
	scenario := os.Getenv(mpiChildEnv)
	if scenario == "" {
		t.Skip("one rank of TestMPIJobs' jobs, run by mpirun with " + mpiChildEnv + " set")
	}
	info, err := Discover(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.Minute
	if scenario == "timeout" {
		timeout = 2 * time.Second
	}
	if scenario == "mismatch" { // as if the environment were another rank's
		info.Rank = (info.Rank + 1) % info.World
	}
	c, err := DialMPI(info, MPIOptions{Timeout: timeout})
	if scenario == "mismatch" {
		fmt.Printf("DialMPI as rank %d returned %v\n", info.Rank, err)
		os.Exit(6)
	}
	if err != nil {
		t.Fatalf("rank %d: DialMPI: %v", info.Rank, err)
	}
	r := c.Rank()
	if r != info.Rank || c.Size() != info.World {
		t.Fatalf("rank %d: Comm is rank %d of %d, Discover said %d of %d", r, r, c.Size(), info.Rank, info.World)
	}
	switch scenario {
	case "collectives":
		mpiCollectives(t, c)
		if err := c.Close(); err != nil {
			t.Errorf("rank %d: Close: %v", r, err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("rank %d: second Close: %v", r, err)
		}
		if err := c.AllReduceSum(make([]float32, 1)); err == nil || !strings.Contains(err.Error(), "AllReduceSum after Close") {
			t.Errorf("rank %d: AllReduceSum after Close returned %v", r, err)
		}
		if _, err := DialMPI(info, MPIOptions{}); err == nil || !strings.Contains(err.Error(), "cannot start twice") {
			t.Errorf("rank %d: a second DialMPI returned %v, want MPI's cannot-start-twice error", r, err)
		}
	case "dead":
		if r == 1 {
			fmt.Printf("rank 1: exiting with status 3 before the collective\n")
			os.Exit(3)
		}
		err := c.AllReduceSum(make([]float32, 16))
		fmt.Printf("rank %d: AllReduceSum returned %v (mpirun should have ended the job)\n", r, err)
		os.Exit(5)
	case "timeout":
		if r == 1 {
			time.Sleep(30 * time.Second) // mpirun ends us when rank 0 exits
		}
		err := c.AllReduceSum(make([]float32, 16))
		fmt.Printf("rank %d: AllReduceSum failed: %v\n", r, err)
		if err2 := c.Barrier(); err == nil || err2 == nil || err2.Error() != err.Error() {
			fmt.Printf("rank %d: FAIL: Barrier after the timeout returned %v\n", r, err2)
		} else {
			fmt.Printf("rank %d: the broken Comm repeats the error\n", r)
		}
		if err := c.Close(); err != nil {
			fmt.Printf("rank %d: FAIL: Close of the broken Comm: %v\n", r, err)
		}
		os.Exit(4)
	default:
		t.Fatalf("unknown scenario %q", scenario)
	}
	if !t.Failed() {
		fmt.Printf("rank %d: ok\n", r)
	}
}

// exactInput is rank r's buffer of n values whose sums over ranks are exact
// in float32 (multiples of 1/4 below 2^15), so they do not depend on the
// order MPI adds them in.
func exactInput(r, n int) []float32 {
	b := make([]float32, n)
	for i := range b {
		b[i] = float32(i%4096-2048)*float32(r+1) + 0.25*float32(r)
	}
	return b
}

func exactSum(world, n int) []float32 {
	s := make([]float32, n)
	for r := range world {
		for i, v := range exactInput(r, n) {
			s[i] += v
		}
	}
	return s
}

// firstDiff is the first index where got's bits differ from want's, -1
// where none does.
func firstDiff(got, want []float32) int {
	for i := range want {
		if i >= len(got) || math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i
		}
	}
	return -1
}

// mpiCollectives checks every collective on the ranks of one job.
func mpiCollectives(t *testing.T, c Comm) {
	r, w := c.Rank(), c.Size()
	same := func(what string, got, want []float32) {
		t.Helper()
		if i := firstDiff(got, want); i >= 0 {
			t.Errorf("rank %d: %s: element %d of %d is %v, want %v", r, what, i, len(want), got[i], want[i])
		}
	}
	// identical checks that buf is bit for bit rank 0's, with a checksum
	// broadcast from rank 0.
	identical := func(what string, buf []float32) {
		t.Helper()
		var h uint64 = 14695981039346656037
		for _, v := range buf {
			h = (h ^ uint64(math.Float32bits(v))) * 1099511628211
		}
		mine := []float32{float32(h >> 48), float32(h >> 32 & 0xffff), float32(h >> 16 & 0xffff), float32(h & 0xffff)}
		theirs := append([]float32(nil), mine...)
		if err := c.Broadcast(theirs, 0); err != nil {
			t.Fatalf("rank %d: Broadcast of %s's checksum: %v", r, what, err)
		}
		if firstDiff(mine, theirs) >= 0 {
			t.Errorf("rank %d: %s differs from rank 0's (checksum %v, rank 0's %v)", r, what, mine, theirs)
		}
	}

	for _, n := range []int{0, 1, 4099, 1 << 20} {
		buf := exactInput(r, n)
		if err := c.AllReduceSum(buf); err != nil {
			t.Fatalf("rank %d: AllReduceSum of %d values: %v", r, n, err)
		}
		same(fmt.Sprintf("AllReduceSum of %d exact values", n), buf, exactSum(w, n))

		buf = exactInput(r, n)
		if err := c.AllReduceMean(buf); err != nil {
			t.Fatalf("rank %d: AllReduceMean of %d values: %v", r, n, err)
		}
		want := exactSum(w, n)
		for i := range want {
			want[i] /= float32(w)
		}
		same(fmt.Sprintf("AllReduceMean of %d exact values", n), buf, want)

		// Sums that depend on the order: near the rank-ordered sum, and
		// the same on every rank.
		buf = input(r, n)
		if err := c.AllReduceSum(buf); err != nil {
			t.Fatalf("rank %d: AllReduceSum of %d values: %v", r, n, err)
		}
		ordered := wantSum(w, n, false)
		abs := make([]float64, n)
		for q := range w {
			for i, v := range input(q, n) {
				abs[i] += math.Abs(float64(v))
			}
		}
		for i := range ordered {
			if d := math.Abs(float64(buf[i] - ordered[i])); d > 4*abs[i]*0x1p-24 {
				t.Errorf("rank %d: AllReduceSum of %d values: element %d is %v, the rank-ordered sum %v", r, n, i, buf[i], ordered[i])
				break
			}
		}
		identical(fmt.Sprintf("AllReduceSum of %d values", n), buf)
	}

	// Calls of at most 1000 elements: 4099 values take five.
	mpiMaxCount = 1000
	buf := exactInput(r, 4099)
	err := c.AllReduceSum(buf)
	same("AllReduceSum in chunks", buf, exactSum(w, 4099))
	bc := exactInput(r, 2500)
	if err == nil {
		err = c.Broadcast(bc, w-1)
	}
	same("Broadcast in chunks", bc, exactInput(w-1, 2500))
	mpiMaxCount = 1<<31 - 1
	if err != nil {
		t.Fatalf("rank %d: collectives in chunks: %v", r, err)
	}

	for root := range w {
		for _, n := range []int{0, 1000 + root} {
			buf := exactInput(r, n)
			if err := c.Broadcast(buf, root); err != nil {
				t.Fatalf("rank %d: Broadcast from %d: %v", r, root, err)
			}
			same(fmt.Sprintf("Broadcast of %d values from %d", n, root), buf, exactInput(root, n))
		}
	}
	if err := c.Broadcast(make([]float32, 1), w); err == nil {
		t.Errorf("rank %d: Broadcast from rank %d of %d succeeded", r, w, w)
	}
	if bb, ok := c.(interface{ broadcastBytes([]byte, int) error }); ok {
		id := func(q int) []byte {
			return fmt.Appendf(make([]byte, 0, 128), "%-128s", fmt.Sprintf("unique id of rank %d", q))
		}
		buf := id(r)
		if err := bb.broadcastBytes(buf, w-1); err != nil {
			t.Fatalf("rank %d: broadcastBytes: %v", r, err)
		}
		if string(buf) != string(id(w-1)) {
			t.Errorf("rank %d: broadcastBytes from %d gave %q", r, w-1, buf)
		}
	} else {
		t.Errorf("rank %d: %T has no broadcastBytes", r, c)
	}

	// bf16: element 0 sums to a tie that rounds down to even (1 + 2^-8 is
	// 0x3f80), element 1 to one that rounds up (1+2^-7 + 2^-8 is 0x3f82);
	// the rest are bf16 values within 2^8 of each other, whose float32
	// sums are exact.
	bf := func(q int) []uint16 {
		b := make([]uint16, 1000)
		for i := range b {
			b[i] = uint16((i*37+q*101)%(8<<7)) + 0x3c00 // exponents 2^-7 .. 2^0
			if (i+q)%3 == 0 {
				b[i] |= 0x8000
			}
		}
		b[0], b[1] = 0, 0
		switch q {
		case 0:
			b[0], b[1] = 0x3f80, 0x3f81
		case 1:
			b[0], b[1] = 0x3b80, 0x3b80
		}
		return b
	}
	wantBF := make([]uint16, 1000)
	sum := make([]float32, 1000)
	for q := range w {
		f := make([]float32, 1000)
		BF16ToFloat32(f, bf(q))
		for i := range sum {
			sum[i] += f[i]
		}
	}
	Float32ToBF16(wantBF, sum)
	if wantBF[0] != 0x3f80 || wantBF[1] != 0x3f82 {
		t.Errorf("rank %d: Float32ToBF16 rounds the ties to %#x and %#x, want 0x3f80 and 0x3f82", r, wantBF[0], wantBF[1])
	}
	gotBF := bf(r)
	if err := c.AllReduceSumBF16(gotBF); err != nil {
		t.Fatalf("rank %d: AllReduceSumBF16: %v", r, err)
	}
	for i := range wantBF {
		if gotBF[i] != wantBF[i] {
			t.Errorf("rank %d: AllReduceSumBF16: element %d is %#04x, want %#04x", r, i, gotBF[i], wantBF[i])
			break
		}
	}

	// Barrier: the last rank arrives 300 ms late; nobody leaves before.
	if r == w-1 {
		time.Sleep(300 * time.Millisecond)
	}
	start := time.Now()
	if err := c.Barrier(); err != nil {
		t.Fatalf("rank %d: Barrier: %v", r, err)
	}
	if d := time.Since(start); r != w-1 && d < 150*time.Millisecond {
		t.Errorf("rank %d: Barrier returned after %v, before the last rank arrived", r, d)
	}

	// From another goroutine, as the trainer's bucket all-reduce does.
	done := make(chan error)
	buf = exactInput(r, 4096)
	go func() { done <- c.AllReduceSum(buf) }()
	if err := <-done; err != nil {
		t.Fatalf("rank %d: AllReduceSum from another goroutine: %v", r, err)
	}
	same("AllReduceSum from another goroutine", buf, exactSum(w, 4096))

	// Go still turns a nil dereference into a panic: MPI did not take
	// the runtime's signal handlers.
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("rank %d: a nil dereference did not panic", r)
			}
		}()
		var p *int
		fmt.Println(*p)
	}()
}

// TestDialMPIErrors checks what DialMPI says where it cannot run.
func TestDialMPIErrors(t *testing.T) {
	noCgo := []string{"built without cgo", "TCP rendezvous", "MASTER_ADDR and MASTER_PORT"}
	for _, tc := range []struct {
		name string
		info Info
		libs []string
		want []string // with cgo; without, noCgo
	}{
		{"library_missing", Info{Rank: 0, World: 2}, []string{"/nonexistent/libmpi.so.40", "libkediff-no-such-mpi.so"},
			[]string{"cannot load Open MPI's library", "/nonexistent/libmpi.so.40: cannot open shared object file", "libkediff-no-such-mpi.so: cannot open",
				"Debian: apt-get install openmpi-bin", "use the TCP rendezvous (set MASTER_ADDR and MASTER_PORT)"}},
		{"not_open_mpi", Info{Rank: 0, World: 2}, []string{"libm.so.6"},
			[]string{"libm.so.6 has no symbol MPI_Init_thread: it is not Open MPI 4 or later", "openmpi-bin"}},
		{"rank_outside_world", Info{Rank: 2, World: 2}, []string{"libmpi.so.40"},
			[]string{"rank 2 of 2 is not a place in a job"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialMPI(tc.info, MPIOptions{}, tc.libs)
			if err == nil {
				c.Close()
				t.Fatal("DialMPI succeeded")
			}
			want := tc.want
			if !mpiCgo {
				want = noCgo
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if err := MPIAvailable(); !mpiCgo && (err == nil || !strings.Contains(err.Error(), noCgo[0])) {
		t.Errorf("MPIAvailable without cgo returned %v", err)
	}
}

// TestDialMPIWorldOfOne: one process needs no MPI calls.
func TestDialMPIWorldOfOne(t *testing.T) {
	if err := MPIAvailable(); err != nil {
		t.Skip(err)
	}
	c, err := DialMPI(Info{World: 1, LocalWorld: 1, Launcher: "none"}, MPIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c != Single() {
		t.Errorf("DialMPI of a world of one returned %T, want Single()", c)
	}
}
