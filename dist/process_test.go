package dist

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// TestMain lets the test binary play one rank of a job when
// DIST_TEST_CHILD is set: it discovers its rank from torchrun's variables,
// all-reduces input(rank), and prints the result's bits.
func TestMain(m *testing.M) {
	if os.Getenv("DIST_TEST_CHILD") != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const childValues = 4096

func child() error {
	info, err := Discover(os.Getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := DialTCP(ctx, info, TCPOptions{JobID: os.Getenv("DIST_TEST_CHILD"), Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	buf := input(info.Rank, childValues)
	if err := c.AllReduceSum(buf); err != nil {
		return err
	}
	var h uint64
	for _, v := range buf {
		h = h*1099511628211 ^ uint64(math.Float32bits(v))
	}
	fmt.Printf("rank %d of %d on %s: %x\n", info.Rank, info.World, info.Device(), h)
	return nil
}

func TestTwoProcessesOverTorchrunRendezvous(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ln, port := listen(t)
	ln.Close() // the child rank 0 listens there; a brief race with other users of the port is possible
	const world = 2
	outs := make([]string, world)
	var g errgroup.Group
	for r := range world {
		g.Go(func() error {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(withoutLaunchers(os.Environ()),
				"DIST_TEST_CHILD=job-"+strconv.Itoa(port),
				"RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world),
				"LOCAL_RANK="+strconv.Itoa(r), "LOCAL_WORLD_SIZE="+strconv.Itoa(world),
				"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
			out, err := cmd.CombinedOutput()
			outs[r] = strings.TrimSpace(string(out))
			if err != nil {
				return fmt.Errorf("rank %d: %v: %s", r, err, out)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	want := wantSum(world, childValues, false)
	var h uint64
	for _, v := range want {
		h = h*1099511628211 ^ uint64(math.Float32bits(v))
	}
	for r, out := range outs {
		line := fmt.Sprintf("rank %d of %d on cuda:%d: %x", r, world, r, h)
		if out != line {
			t.Errorf("rank %d printed %q, want %q", r, out, line)
		}
	}
}

// withoutLaunchers drops the variables Discover reads, so a test run under
// srun or mpirun still starts a clean torchrun-style job.
func withoutLaunchers(env []string) []string {
	var keep []string
	for _, kv := range env {
		drop := false
		for _, p := range []string{"OMPI_", "PMIX_", "SLURM_", "PMI_", "MPI_LOCAL", "TORCHELASTIC_",
			"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="} {
			drop = drop || strings.HasPrefix(kv, p)
		}
		if !drop {
			keep = append(keep, kv)
		}
	}
	return keep
}
