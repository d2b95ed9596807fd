package pipelines

import (
	"context"
	"fmt"
	"time"

	"gocloud.dev/blob"

	"github.com/kediff/kediff/shards"
)

// shardSink is the write stage. Items of several shards arrive interleaved
// and, after multi-worker stages, out of order; it keeps one writer per open
// shard and writes each shard's samples in input order, so that the output
// does not depend on scheduling. A shard is closed, stats last, once its end
// marker has arrived and every sample before it has been written.
type shardSink struct {
	out        *blob.Bucket
	md         shards.Metadata
	wopt       shards.WriterOptions
	configHash string
	inputs     map[string]shards.Input // by shard ID
	bufs       *shards.BufferPool      // takes back written rows' image bytes

	shards map[string]*openShard
	// estimate, when set, receives the expected number of samples of the run,
	// extrapolated from the shards finished so far (input shards carry no
	// sample counts), for the progress bar's ETA.
	estimate func(int64)
	// obs, when set, is told of every row, reject and finished shard.
	obs Observer

	closed                  int
	read, written, rejected int64
}

type openShard struct {
	w       *shards.ShardWriter
	next    int           // index of the next sample to write
	pending map[int]*item // arrived early, waiting for next
	end     *item         // end marker, once it has arrived
	started time.Time
}

func newShardSink(out *blob.Bucket, md shards.Metadata, wopt shards.WriterOptions, configHash string, inputs []shards.Input, bufs *shards.BufferPool) *shardSink {
	k := &shardSink{out: out, md: md, wopt: wopt, configHash: configHash, bufs: bufs,
		inputs: map[string]shards.Input{}, shards: map[string]*openShard{}}
	for _, in := range inputs {
		k.inputs[in.ID] = in
	}
	return k
}

func (k *shardSink) open() int { return len(k.shards) }

// put is the sink function; the write stage runs it on one goroutine.
func (k *shardSink) put(ctx context.Context, it *item) error {
	it.img = nil // the decoded image is only for the model stages
	id := it.sample.Shard
	sh := k.shards[id]
	if sh == nil {
		in, ok := k.inputs[id]
		if !ok {
			return fmt.Errorf("write: sample %q names shard %q, which is not in this run", it.sample.Key, id)
		}
		md := k.md
		md.Input = in.URL
		w, err := shards.NewShardWriter(ctx, k.out, id, md, k.wopt)
		if err != nil {
			return err
		}
		sh = &openShard{w: w, pending: map[int]*item{}, started: time.Now()}
		k.shards[id] = sh
	}
	if it.end {
		sh.end = it
	} else {
		sh.pending[it.sample.Index] = it
	}
	for {
		next, ok := sh.pending[sh.next]
		if !ok {
			break
		}
		delete(sh.pending, sh.next)
		if err := k.write(sh, next); err != nil {
			return err
		}
		sh.next++
	}
	if sh.end != nil && sh.next == sh.end.count {
		return k.finish(ctx, id, sh)
	}
	if sh.end != nil && sh.next > sh.end.count {
		return fmt.Errorf("write: shard %s: %d samples written but the reader reported %d", id, sh.next, sh.end.count)
	}
	return nil
}

func (k *shardSink) write(sh *openShard, it *item) error {
	if it.reject != nil {
		k.rejected++
		if err := sh.w.WriteReject(it.reject); err != nil {
			return err
		}
		if k.obs != nil {
			k.obs.Rejected(it.reject.Stage, it.reject.Reason)
		}
		return nil
	}
	k.written++
	if err := sh.w.Write(it.row); err != nil {
		return err
	}
	img := it.row.Image // every row the pipeline makes has one
	if k.obs != nil {
		k.obs.Written(len(img.Bytes))
	}
	// The writer has copied the encoded image into its column buffer.
	k.bufs.Put(img.Bytes)
	img.Bytes = nil
	return nil
}

func (k *shardSink) finish(ctx context.Context, id string, sh *openShard) error {
	end := sh.end
	started := end.start
	if started.IsZero() {
		started = sh.started
	}
	finished := time.Now()
	st := shards.Stats{
		Shard:      id,
		Input:      k.inputs[id].URL,
		Read:       int64(end.count),
		Started:    started,
		Finished:   finished,
		DurationS:  finished.Sub(started).Seconds(),
		Version:    k.md.Version,
		ConfigHash: k.configHash,
	}
	if end.retries != nil {
		st.Retries, st.Resumes, st.RetryReasons = end.retries.Snapshot()
	}
	if err := sh.w.Close(st); err != nil {
		// A stats write that fails part-way leaves no stats file
		// (shards writes it whole or not at all): the shard stays
		// incomplete, as the error says.
		return fmt.Errorf("write: shard %s: %w", id, err)
	}
	delete(k.shards, id)
	k.closed++
	k.read += int64(end.count)
	if k.obs != nil {
		// Close fills in the counts and file sizes; the file has them all.
		if full, err := shards.ReadStats(ctx, k.out, id); err == nil {
			st = full
		}
		k.obs.ShardDone(st)
	}
	if k.estimate != nil {
		k.estimate(k.read * int64(len(k.inputs)) / int64(k.closed))
	}
	return nil
}

// abort closes every open shard without its stats file, leaving it
// incomplete so that the next run redoes it.
func (k *shardSink) abort() {
	for id, sh := range k.shards {
		sh.w.Abort()
		delete(k.shards, id)
	}
}
