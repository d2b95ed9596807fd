package dist

import (
	"strings"
	"testing"
)

func TestDiscover(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Info
	}{
		{"no_launcher_is_one_process", nil, Info{World: 1, LocalWorld: 1, Launcher: "none"}},
		{"openmpi", map[string]string{
			"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4",
			"OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
		}, Info{Rank: 3, World: 4, LocalRank: 1, LocalWorld: 2, Launcher: "openmpi"}},
		{"pmix_takes_size_from_slurm", map[string]string{
			"PMIX_RANK": "2", "SLURM_PROCID": "2", "SLURM_NTASKS": "3", "SLURM_LOCALID": "0",
		}, Info{Rank: 2, World: 3, Launcher: "pmix"}},
		{"pmix_takes_size_from_openmpi", map[string]string{
			"PMIX_RANK": "1", "OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
		}, Info{Rank: 1, World: 2, LocalRank: 1, Launcher: "openmpi"}},
		{"srun", map[string]string{
			"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
		}, Info{Rank: 5, World: 8, LocalRank: 1, Launcher: "slurm"}},
		{"pmi_hydra", map[string]string{
			"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2",
		}, Info{Rank: 1, World: 2, LocalRank: 1, LocalWorld: 2, Launcher: "pmi"}},
		{"torchrun", map[string]string{
			"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
			"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
		}, Info{Rank: 1, World: 2, LocalRank: 1, LocalWorld: 2, MasterAddr: "127.0.0.1", MasterPort: 29500, Launcher: "torchrun"}},
		{"pytorchjob_without_local_rank", map[string]string{
			"RANK": "0", "WORLD_SIZE": "3", "MASTER_ADDR": "job-master-0", "MASTER_PORT": "23456",
		}, Info{Rank: 0, World: 3, MasterAddr: "job-master-0", MasterPort: 23456, Launcher: "torchrun"}},
		{"mpirun_with_master_addr_for_tcp", map[string]string{
			"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1234",
		}, Info{Rank: 0, World: 2, MasterAddr: "127.0.0.1", MasterPort: 1234, Launcher: "openmpi"}},
		{"torchrun_under_srun_takes_torchrun_numbering", map[string]string{
			"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0",
			"TORCHELASTIC_RUN_ID": "j1", "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
		}, Info{Rank: 5, World: 8, LocalRank: 1, LocalWorld: 4, Launcher: "torchrun"}},
		{"agreeing_launchers", map[string]string{
			"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "SLURM_PROCID": "1", "SLURM_NTASKS": "2",
		}, Info{Rank: 1, World: 2, Launcher: "openmpi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Discover(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Discover = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDiscoverRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"rank_not_below_world", map[string]string{"RANK": "2", "WORLD_SIZE": "2"}, []string{"RANK=2", "WORLD_SIZE=2"}},
		{"world_zero", map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "0"}, []string{"OMPI_COMM_WORLD_SIZE=0", "at least 1"}},
		{"rank_not_a_number", map[string]string{"SLURM_PROCID": "one", "SLURM_NTASKS": "2"}, []string{`SLURM_PROCID="one"`}},
		{"negative_rank", map[string]string{"PMI_RANK": "-1", "PMI_SIZE": "2"}, []string{"PMI_RANK=-1"}},
		{"rank_without_world", map[string]string{"RANK": "0"}, []string{"RANK", "WORLD_SIZE is not"}},
		{"world_without_rank", map[string]string{"OMPI_COMM_WORLD_SIZE": "4"}, []string{"OMPI_COMM_WORLD_RANK is not"}},
		{"local_rank_not_below_local_world", map[string]string{"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"}, []string{"LOCAL_RANK=2", "LOCAL_WORLD_SIZE=2"}},
		{"local_rank_not_a_number", map[string]string{"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "x"}, []string{`LOCAL_RANK="x"`}},
		{"pmix_without_size", map[string]string{"PMIX_RANK": "1"}, []string{"PMIX_RANK=1", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"}},
		{"launchers_disagree", map[string]string{
			"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "SLURM_PROCID": "2", "SLURM_NTASKS": "4",
		}, []string{"disagree", "OMPI_COMM_WORLD_RANK=1", "SLURM_PROCID=2"}},
		{"torchrun_by_hand_disagrees_with_mpirun", map[string]string{
			"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "RANK": "0", "WORLD_SIZE": "4",
		}, []string{"OMPI_COMM_WORLD_SIZE=2", "WORLD_SIZE=4"}},
		{"port_not_a_number", map[string]string{"MASTER_PORT": "http"}, []string{`MASTER_PORT="http"`}},
		{"port_out_of_range", map[string]string{"MASTER_PORT": "70000"}, []string{"MASTER_PORT=70000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Discover(func(k string) string { return tt.env[k] })
			if err == nil {
				t.Fatalf("Discover = %+v, want an error", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDeviceIsLocalRank(t *testing.T) {
	if got := (Info{Rank: 5, LocalRank: 1}).Device(); got != "cuda:1" {
		t.Errorf("Device = %q, want cuda:1", got)
	}
}

func TestSingleLeavesBuffers(t *testing.T) {
	c := Single()
	buf := []float32{1, 2, 3}
	for _, f := range []func([]float32) error{c.AllReduceSum, c.AllReduceMean, func(b []float32) error { return c.Broadcast(b, 0) }} {
		if err := f(buf); err != nil {
			t.Fatal(err)
		}
	}
	if buf[0] != 1 || buf[1] != 2 || buf[2] != 3 || c.Barrier() != nil || c.Rank() != 0 || c.Size() != 1 {
		t.Errorf("Single changed something: %v", buf)
	}
	if err := c.Broadcast(buf, 1); err == nil {
		t.Error("Broadcast from root 1 in a world of 1 succeeded")
	}
}
