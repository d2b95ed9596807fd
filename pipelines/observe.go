package pipelines

import (
	"context"

	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
)

// Observer watches a Preprocess run as it goes, for live metrics (package
// metrics implements it). Preprocess calls its methods from the run's
// goroutines, Written and Rejected once per sample: they must be quick and
// safe for concurrent use, and must not fail the run.
type Observer interface {
	// Plan is called once the inputs are matched: the shards this worker
	// owns, those already complete (skipped) and those this run processes.
	Plan(owned, skipped, todo int)
	// Start is called with the run's pipeline just before it starts; its
	// Stats may be read at any time from then on, after the run too.
	Start(p *stages.Pipeline)
	// InputDone is called when an input shard has been read to its end.
	InputDone(ctx context.Context, in shards.Input)
	// Written is called for every row written, with its stored image's
	// size; Rejected for every reject written, with the stage and reason
	// that rejected it.
	Written(imageBytes int)
	Rejected(stage, reason string)
	// ShardDone is called when an output shard is complete, with its stats
	// file as written.
	ShardDone(st shards.Stats)
}
