package dist

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"time"
)

// ConnectOptions choose and tune the communicator Connect makes.
type ConnectOptions struct {
	// Kind is "auto" (or ""), "none", "tcp", "mpi" or "nccl"; see Connect.
	Kind string
	// Device is the GPU this rank trains on, or -1 for the CPU kernels.
	// With a GPU, auto picks NCCL.
	Device int
	// JobID keeps two jobs on one port apart (TCP); default JobID(getenv).
	JobID string
	// Timeout bounds every collective (default 5 minutes).
	Timeout time.Duration
	// Getenv reads the environment (nil: os.Getenv), for Slurm's variables.
	Getenv func(string) string
	// DevicePointer and Stream go to NCCL (NCCLOptions): how the trainer's
	// GPU buffers map to device memory and the stream its kernels use.
	DevicePointer func(addr uintptr, n int, bf16 bool) (uintptr, error)
	Stream        uintptr
}

// DeviceComm is a Comm whose collectives take GPU memory (NCCL's). Host is
// a Comm over the same ranks for host buffers (the one NCCL bootstrapped
// over), for the small exchanges a trainer makes beside the gradients.
type DeviceComm interface {
	Comm
	Host() Comm
}

// ncclJob is NCCL with its bootstrap Comm, which it closes too.
type ncclJob struct {
	Comm
	host Comm
}

func (j ncclJob) Host() Comm { return j.host }

func (j ncclJob) String() string {
	if s, ok := j.host.(fmt.Stringer); ok {
		return "NCCL, bootstrapped over " + s.String()
	}
	return "NCCL"
}

func (j ncclJob) Close() error {
	err := j.Comm.Close()
	if e := j.host.Close(); err == nil {
		err = e
	}
	return err
}

// Connect joins the job info describes. With Kind "auto":
//
//   - a world of one needs no communicator: Single;
//   - on a GPU (Device >= 0): NCCL, its unique id sent over MPI when
//     mpirun started the job and over the TCP rendezvous otherwise;
//   - under mpirun (and srun --mpi=pmix or PMI launchers) where Open MPI
//     loads: MPI;
//   - otherwise the TCP rendezvous at MASTER_ADDR:MASTER_PORT. Under srun
//     without them, rank 0's host is the first of SLURM_STEP_NODELIST (or
//     SLURM_JOB_NODELIST) and the port is derived from the job and step
//     ids, so `srun -n 4 kediff train ...` needs no exports.
//
// "none" refuses a world of more than one: each process would train its
// own model.
func Connect(ctx context.Context, info Info, opts ConnectOptions) (Comm, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if opts.JobID == "" {
		opts.JobID = JobID(getenv)
	}
	kind := opts.Kind
	if kind == "" {
		kind = "auto"
	}
	switch kind {
	case "auto", "none", "tcp", "mpi", "nccl":
	default:
		return nil, fmt.Errorf("dist: communicator %q: want auto, none, tcp, mpi or nccl", kind)
	}
	if info.World <= 1 {
		if kind == "nccl" || kind == "mpi" {
			// Asked for explicitly (a check of the library with one rank).
		} else {
			return Single(), nil
		}
	}
	if kind == "none" {
		return nil, fmt.Errorf("dist: --dist none but the launcher (%s) started rank %d of %d: every process would train its own model; use --dist auto", info.Launcher, info.Rank, info.World)
	}
	mpiLaunch := info.Launcher == "openmpi" || info.Launcher == "pmix" || info.Launcher == "pmi"
	host := func() (Comm, error) { // the CPU communicator, or NCCL's bootstrap
		if kind == "mpi" || (kind != "tcp" && mpiLaunch && MPIAvailable() == nil) {
			return DialMPI(info, MPIOptions{Timeout: opts.Timeout})
		}
		if info.MasterAddr == "" && info.Launcher == "slurm" {
			info.MasterAddr, info.MasterPort = SlurmRendezvous(getenv)
		}
		if info.MasterAddr == "" || info.MasterPort == 0 {
			hint := "set MASTER_ADDR and MASTER_PORT (rank 0's host and a free port) on every rank"
			if mpiLaunch {
				hint = fmt.Sprintf("Open MPI does not load (%v); install it or %s", MPIAvailable(), hint)
			}
			return nil, fmt.Errorf("dist: rank %d of %d (%s) has no way to reach the other ranks: %s", info.Rank, info.World, info.Launcher, hint)
		}
		return DialTCP(ctx, info, TCPOptions{JobID: opts.JobID, Timeout: opts.Timeout})
	}
	if kind == "nccl" || (kind == "auto" && opts.Device >= 0) {
		if opts.Device < 0 {
			return nil, errors.New("dist: NCCL reduces GPU memory: train with --device cuda")
		}
		boot, err := host()
		if err != nil {
			return nil, err
		}
		c, err := DialNCCL(info, boot, opts.Device, NCCLOptions{Timeout: opts.Timeout, DevicePointer: opts.DevicePointer, Stream: opts.Stream})
		if err != nil {
			boot.Close()
			return nil, err
		}
		return ncclJob{Comm: c, host: boot}, nil
	}
	return host()
}

// JobID names the job for the TCP handshake: Slurm's job and step ids,
// torchrun's run id, a Kubernetes Job's name, or "" where none is set.
func JobID(getenv func(string) string) string {
	if j := getenv("SLURM_JOB_ID"); j != "" {
		if s := getenv("SLURM_STEP_ID"); s != "" {
			return "slurm-" + j + "." + s
		}
		return "slurm-" + j
	}
	for _, v := range []string{"TORCHELASTIC_RUN_ID", "JOB_NAME"} {
		if j := getenv(v); j != "" {
			return j
		}
	}
	return ""
}

// SlurmRendezvous derives a TCP rendezvous for srun-launched ranks: the
// first host of the step's node list, and a port in [20000, 40000) from
// the job and step ids (so the array tasks and steps sharing a node do not
// collide). Empty where Slurm did not say.
func SlurmRendezvous(getenv func(string) string) (addr string, port int) {
	nodes := getenv("SLURM_STEP_NODELIST")
	if nodes == "" {
		nodes = getenv("SLURM_JOB_NODELIST")
	}
	addr = FirstHost(nodes)
	job := getenv("SLURM_JOB_ID")
	if addr == "" || job == "" {
		return "", 0
	}
	h := fnv.New32a()
	h.Write([]byte(job + "." + getenv("SLURM_STEP_ID")))
	return addr, 20000 + int(h.Sum32()%20000)
}

// FirstHost returns the first host of a Slurm host list such as
// "gpu[003-010,012],cpu1" (gpu003), as `scontrol show hostnames | head -1`
// prints it.
func FirstHost(list string) string {
	list = strings.TrimSpace(list)
	end := strings.IndexAny(list, ",[")
	if end < 0 {
		return list
	}
	if list[end] == ',' {
		return list[:end]
	}
	prefix, rest := list[:end], list[end+1:]
	close := strings.IndexByte(rest, ']')
	if close < 0 {
		return ""
	}
	first := rest[:close]
	if i := strings.IndexAny(first, ",-"); i >= 0 {
		first = first[:i]
	}
	if _, err := strconv.Atoi(first); err != nil {
		return ""
	}
	return prefix + first + suffixOf(rest[close+1:])
}

// suffixOf is what follows a bracket up to the next host: "gpu[1-2]-ib"
// names gpu1-ib.
func suffixOf(s string) string {
	if i := strings.IndexByte(s, ','); i >= 0 {
		return s[:i]
	}
	return s
}
