package pipelines

import (
	"fmt"
	"hash/fnv"
	"os"
	"strconv"

	"github.com/kediff/kediff/shards"
)

// Split names this process's share of the input shards: worker Index of
// Count. Shard s belongs to worker FNV-1a(s.ID) mod Count, a rule that needs
// no coordination and does not move a shard to another worker when new
// shards arrive (a scheduled run then picks up exactly the new ones).
type Split struct {
	Index, Count int
}

// Owns reports whether the shard with this ID is this worker's.
func (s Split) Owns(id string) bool {
	if s.Count <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64()%uint64(s.Count)) == s.Index
}

// Filter keeps the inputs this worker owns, in order.
func (s Split) Filter(in []shards.Input) []shards.Input {
	var out []shards.Input
	for _, x := range in {
		if s.Owns(x.ID) {
			out = append(out, x)
		}
	}
	return out
}

// SplitFromEnv completes a split given by flags (-1 meaning "not given") from
// the batch system's environment: a Kubernetes Indexed Job sets
// JOB_COMPLETION_INDEX; a Slurm array sets SLURM_ARRAY_TASK_ID, and
// SLURM_ARRAY_TASK_MIN/SLURM_ARRAY_TASK_COUNT, so "--array=1-8" works too.
func SplitFromEnv(index, count int, getenv func(string) string) (Split, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	atoi := func(name string) (int, bool, error) {
		v := getenv(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, false, fmt.Errorf("worker split: %s=%q is not a number", name, v)
		}
		return n, true, nil
	}
	if index < 0 {
		if n, ok, err := atoi("JOB_COMPLETION_INDEX"); err != nil {
			return Split{}, err
		} else if ok {
			index = n
		} else if n, ok, err := atoi("SLURM_ARRAY_TASK_ID"); err != nil {
			return Split{}, err
		} else if ok {
			min, _, err := atoi("SLURM_ARRAY_TASK_MIN")
			if err != nil {
				return Split{}, err
			}
			index = n - min
			if count < 0 {
				if c, ok, err := atoi("SLURM_ARRAY_TASK_COUNT"); err != nil {
					return Split{}, err
				} else if ok {
					count = c
				}
			}
		}
	}
	if index < 0 {
		index = 0
	}
	if count < 0 {
		count = 1
	}
	if count == 0 || index >= count {
		return Split{}, fmt.Errorf("worker split: worker %d of %d is out of range (want 0 <= worker < workers; set --workers to the job's parallelism)", index, count)
	}
	return Split{Index: index, Count: count}, nil
}
