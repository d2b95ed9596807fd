package dist

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestFirstHost(t *testing.T) {
	for _, tc := range []struct{ list, want string }{
		{"", ""},
		{"node1", "node1"},
		{"node1,node2", "node1"},
		{"gpu[003-010,012],cpu1", "gpu003"},
		{"gpu[7,9]", "gpu7"},
		{"rack1-gpu[01-04]-ib", "rack1-gpu01-ib"},
		{"a[1-2]-ib,b3", "a1-ib"},
		{"bad[x-2]", ""},
		{"open[1-2", ""},
	} {
		if got := FirstHost(tc.list); got != tc.want {
			t.Errorf("FirstHost(%q) = %q, want %q", tc.list, got, tc.want)
		}
	}
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestSlurmRendezvousAndJobID(t *testing.T) {
	a, p := SlurmRendezvous(env("SLURM_STEP_NODELIST", "gpu[3-4]", "SLURM_JOB_NODELIST", "gpu[1-4]", "SLURM_JOB_ID", "77", "SLURM_STEP_ID", "0"))
	if a != "gpu3" || p < 20000 || p >= 40000 {
		t.Errorf("rendezvous %s:%d, want gpu3 and a port in [20000, 40000)", a, p)
	}
	_, p2 := SlurmRendezvous(env("SLURM_JOB_NODELIST", "gpu[1-4]", "SLURM_JOB_ID", "78", "SLURM_STEP_ID", "0"))
	_, p3 := SlurmRendezvous(env("SLURM_JOB_NODELIST", "gpu[1-4]", "SLURM_JOB_ID", "77", "SLURM_STEP_ID", "1"))
	if p2 == p || p3 == p {
		t.Errorf("jobs 77.0, 78.0 and 77.1 share port %d (%d, %d)", p, p2, p3)
	}
	if a, p := SlurmRendezvous(env("SLURM_JOB_ID", "77")); a != "" || p != 0 {
		t.Errorf("no node list: %s:%d", a, p)
	}
	for _, tc := range []struct {
		env  func(string) string
		want string
	}{
		{env("SLURM_JOB_ID", "5", "SLURM_STEP_ID", "2", "TORCHELASTIC_RUN_ID", "x"), "slurm-5.2"},
		{env("SLURM_JOB_ID", "5"), "slurm-5"},
		{env("TORCHELASTIC_RUN_ID", "run-a", "JOB_NAME", "j"), "run-a"},
		{env("JOB_NAME", "j"), "j"},
		{env(), ""},
	} {
		if got := JobID(tc.env); got != tc.want {
			t.Errorf("JobID = %q, want %q", got, tc.want)
		}
	}
}

func TestConnectChoosesAndRefuses(t *testing.T) {
	ctx := context.Background()
	c, err := Connect(ctx, Info{World: 1, Launcher: "none"}, ConnectOptions{Device: -1})
	if err != nil || c.Size() != 1 {
		t.Fatalf("one process: %v, %v", c, err)
	}
	for _, tc := range []struct {
		name string
		info Info
		opts ConnectOptions
		want string
	}{
		{"unknown kind", Info{Rank: 0, World: 2}, ConnectOptions{Kind: "gloo", Device: -1}, `"gloo"`},
		{"none with two ranks", Info{Rank: 1, World: 2, Launcher: "torchrun"}, ConnectOptions{Kind: "none", Device: -1}, "own model"},
		{"no rendezvous", Info{Rank: 1, World: 2, Launcher: "torchrun"}, ConnectOptions{Device: -1, Getenv: env()}, "MASTER_ADDR and MASTER_PORT"},
		{"srun without a node list", Info{Rank: 1, World: 2, Launcher: "slurm"}, ConnectOptions{Device: -1, Getenv: env("SLURM_JOB_ID", "3")}, "MASTER_ADDR"},
		{"NCCL on the CPU", Info{Rank: 1, World: 2, MasterAddr: "127.0.0.1", MasterPort: 1}, ConnectOptions{Kind: "nccl", Device: -1}, "--device cuda"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Connect(ctx, tc.info, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// Ranks srun started, with no MASTER_ADDR, meet at the rendezvous Slurm's
// variables imply and all-reduce.
func TestConnectUnderSrunWithoutExports(t *testing.T) {
	getenv := env("SLURM_JOB_NODELIST", "127.0.0.1", "SLURM_JOB_ID", "424242", "SLURM_STEP_ID", "7")
	errs := make(chan error, 2)
	for r := range 2 {
		go func() {
			c, err := Connect(context.Background(), Info{Rank: r, World: 2, Launcher: "slurm"}, ConnectOptions{Device: -1, Getenv: getenv})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			buf := []float32{float32(r + 1)}
			if err := c.AllReduceSum(buf); err != nil || buf[0] != 3 {
				errs <- fmt.Errorf("rank %d: sum %v, %v", r, buf, err)
				return
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
