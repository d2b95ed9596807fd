package dist

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Info is what a process learns about its place in the job from its
// launcher's environment.
type Info struct {
	Rank  int // this process, 0 <= Rank < World
	World int // number of processes in the job

	// LocalRank numbers the processes on this machine; it picks the GPU.
	// LocalWorld is their count, or 0 where the launcher does not say.
	LocalRank  int
	LocalWorld int

	// MasterAddr and MasterPort are rank 0's rendezvous address
	// (MASTER_ADDR, MASTER_PORT), set by torchrun and Kubernetes and
	// settable by hand under any launcher; empty and 0 where absent.
	MasterAddr string
	MasterPort int

	// Launcher names where the rank came from: "openmpi", "pmix", "slurm",
	// "pmi", "torchrun" or "none" (a single process).
	Launcher string
}

// Device returns the CUDA device this process should use, "cuda:<LocalRank>":
// each process on a machine takes its own GPU, as torchrun and DDP do.
func (i Info) Device() string { return "cuda:" + strconv.Itoa(i.LocalRank) }

// found is one launcher's view, with the variables it came from so that
// errors can quote them.
type found struct {
	Info
	vars string
}

// launcher reads one launcher's variables; ok is false when none are set.
type launcher struct {
	name string
	read func(e *envReader) (f found, ok bool)
}

// launchers in the order Discover trusts them: the MPI family first, since
// mpirun and srun set their own variables authoritatively, then torchrun's,
// which a user may also set by hand.
var launchers = []launcher{
	{"openmpi", func(e *envReader) (found, bool) {
		return e.group("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
			"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE")
	}},
	{"pmix", readPMIx},
	{"slurm", func(e *envReader) (found, bool) {
		return e.group("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "")
	}},
	{"pmi", func(e *envReader) (found, bool) {
		// MPICH's Hydra sets the local pair next to PMI_RANK and PMI_SIZE.
		return e.group("pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS")
	}},
	{"torchrun", func(e *envReader) (found, bool) {
		return e.group("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
	}},
}

// readPMIx reads PMIX_RANK. PMIx has no size variable of its own, so the
// size comes from Slurm or Open MPI, whichever set one.
func readPMIx(e *envReader) (found, bool) {
	if e.getenv("PMIX_RANK") == "" {
		return found{}, false
	}
	for _, v := range []string{"SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"} {
		if e.getenv(v) != "" {
			f, _ := e.group("pmix", "PMIX_RANK", v, "", "")
			for _, l := range []string{"SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"} {
				if e.getenv(l) != "" {
					f.LocalRank = e.int(l)
					f.vars += fmt.Sprintf(", %s=%s", l, e.getenv(l))
					break
				}
			}
			return f, true
		}
	}
	e.fail(fmt.Errorf("dist: PMIX_RANK=%s is set but neither SLURM_NTASKS nor OMPI_COMM_WORLD_SIZE gives the world size (launch with srun or mpirun, or set one of them)", e.getenv("PMIX_RANK")))
	return found{}, false
}

// Discover finds this process's rank, world size and local rank from the
// environment its launcher set, so the same binary runs under mpirun, srun,
// torchrun or a Kubernetes pod set without flags. getenv is usually
// os.Getenv; nil means os.Getenv.
//
// With no launcher variables the process is rank 0 of 1. Malformed values,
// a rank outside the world, and two launchers that disagree are errors
// naming the variables. One exception to the agreement rule: a process that
// torchrun's agent started (TORCHELASTIC_RUN_ID is set) takes torchrun's
// numbering, since an outer srun or mpirun counted the agents, not the
// workers.
func Discover(getenv func(string) string) (Info, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	e := &envReader{getenv: getenv}
	var all []found
	for _, l := range launchers {
		if f, ok := l.read(e); ok && e.err == nil {
			all = append(all, f)
		}
		if e.err != nil {
			return Info{}, e.err
		}
	}
	addr := strings.TrimSpace(getenv("MASTER_ADDR"))
	port := 0
	if getenv("MASTER_PORT") != "" {
		port = e.int("MASTER_PORT")
		if e.err == nil && (port < 1 || port > 65535) {
			return Info{}, fmt.Errorf("dist: MASTER_PORT=%d is not a TCP port (want 1 to 65535)", port)
		}
		if e.err != nil {
			return Info{}, e.err
		}
	}
	if len(all) == 0 {
		return Info{World: 1, LocalWorld: 1, MasterAddr: addr, MasterPort: port, Launcher: "none"}, nil
	}
	primary := all[0]
	if getenv("TORCHELASTIC_RUN_ID") != "" && all[len(all)-1].Launcher == "torchrun" {
		primary = all[len(all)-1]
	} else {
		for _, o := range all[1:] {
			if o.Rank != primary.Rank || o.World != primary.World {
				return Info{}, fmt.Errorf("dist: launchers disagree: %s says rank %d of %d (%s) but %s says rank %d of %d (%s); unset the stale variables or launch with one launcher",
					primary.Launcher, primary.Rank, primary.World, primary.vars, o.Launcher, o.Rank, o.World, o.vars)
			}
		}
	}
	primary.MasterAddr, primary.MasterPort = addr, port
	return primary.Info, nil
}

// envReader reads integers from the environment, keeping the first error.
type envReader struct {
	getenv func(string) string
	err    error
}

func (e *envReader) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *envReader) int(name string) int {
	s := strings.TrimSpace(e.getenv(name))
	n, err := strconv.Atoi(s)
	if err != nil {
		e.fail(fmt.Errorf("dist: %s=%q is not a number", name, e.getenv(name)))
	}
	return n
}

// group reads a launcher's rank, world, local rank and local world
// variables (the last two may be "" or unset) and checks them together.
func (e *envReader) group(name, rankVar, worldVar, localVar, localWorldVar string) (found, bool) {
	if e.getenv(rankVar) == "" && e.getenv(worldVar) == "" {
		return found{}, false
	}
	for _, v := range []string{rankVar, worldVar} {
		if e.getenv(v) == "" {
			e.fail(fmt.Errorf("dist: %s is set but %s is not (both come from %s; is the environment complete?)", otherOf(v, rankVar, worldVar), v, name))
			return found{}, false
		}
	}
	f := found{Info: Info{Launcher: name}}
	f.Rank, f.World = e.int(rankVar), e.int(worldVar)
	f.vars = fmt.Sprintf("%s=%s, %s=%s", rankVar, e.getenv(rankVar), worldVar, e.getenv(worldVar))
	if localVar != "" && e.getenv(localVar) != "" {
		f.LocalRank = e.int(localVar)
		f.vars += fmt.Sprintf(", %s=%s", localVar, e.getenv(localVar))
	}
	if localWorldVar != "" && e.getenv(localWorldVar) != "" {
		f.LocalWorld = e.int(localWorldVar)
		f.vars += fmt.Sprintf(", %s=%s", localWorldVar, e.getenv(localWorldVar))
	}
	if e.err != nil {
		return found{}, false
	}
	switch {
	case f.World < 1:
		e.fail(fmt.Errorf("dist: %s: world size must be at least 1 (%s)", name, f.vars))
	case f.Rank < 0 || f.Rank >= f.World:
		e.fail(fmt.Errorf("dist: %s: rank must be in [0, world size) (%s)", name, f.vars))
	case f.LocalRank < 0:
		e.fail(fmt.Errorf("dist: %s: local rank must not be negative (%s)", name, f.vars))
	case f.LocalWorld < 0 || f.LocalWorld > f.World:
		e.fail(fmt.Errorf("dist: %s: local world size must be in [1, world size] (%s)", name, f.vars))
	case f.LocalWorld > 0 && f.LocalRank >= f.LocalWorld:
		e.fail(fmt.Errorf("dist: %s: local rank must be below the local world size (%s)", name, f.vars))
	}
	return f, e.err == nil
}

func otherOf(v, a, b string) string {
	if v == a {
		return b
	}
	return a
}
