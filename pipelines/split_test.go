package pipelines

import (
	"fmt"
	"testing"

	"github.com/kediff/kediff/shards"
)

func TestSplitFromEnv(t *testing.T) {
	tests := []struct {
		name         string
		index, count int
		env          map[string]string
		want         Split
		wantErr      bool
	}{
		{name: "defaults_to_one_worker", index: -1, count: -1, want: Split{0, 1}},
		{name: "flags_win", index: 2, count: 4, env: map[string]string{"JOB_COMPLETION_INDEX": "1"}, want: Split{2, 4}},
		{name: "kubernetes_indexed_job", index: -1, count: 8, env: map[string]string{"JOB_COMPLETION_INDEX": "5"}, want: Split{5, 8}},
		{name: "slurm_array_from_zero", index: -1, count: -1,
			env: map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "16"}, want: Split{3, 16}},
		{name: "slurm_array_from_one", index: -1, count: -1,
			env: map[string]string{"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}, want: Split{7, 8}},
		{name: "index_out_of_range", index: 4, count: 4, wantErr: true},
		{name: "env_index_without_count", index: -1, count: -1, env: map[string]string{"JOB_COMPLETION_INDEX": "2"}, wantErr: true},
		{name: "garbage_env", index: -1, count: 2, env: map[string]string{"JOB_COMPLETION_INDEX": "two"}, wantErr: true},
		{name: "zero_workers", index: 0, count: 0, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitFromEnv(tt.index, tt.count, func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Every shard belongs to exactly one worker, whatever the worker count, and
// adding shards does not move old ones.
func TestSplitPartitions(t *testing.T) {
	var inputs []shards.Input
	for i := range 500 {
		inputs = append(inputs, shards.Input{ID: fmt.Sprintf("%05d", i)})
	}
	for _, n := range []int{1, 2, 3, 7} {
		seen := map[string]int{}
		for w := range n {
			for _, in := range (Split{w, n}).Filter(inputs) {
				seen[in.ID]++
			}
		}
		if len(seen) != len(inputs) {
			t.Fatalf("%d workers: %d of %d shards assigned", n, len(seen), len(inputs))
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("%d workers: shard %s assigned %d times", n, id, c)
			}
		}
		// Balanced within a generous bound.
		for w := range n {
			got := len((Split{w, n}).Filter(inputs))
			if want := len(inputs) / n; got < want*7/10 || got > want*13/10 {
				t.Errorf("%d workers: worker %d has %d shards, want about %d", n, w, got, want)
			}
		}
	}
}
