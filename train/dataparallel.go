package train

import (
	"fmt"
	"math"

	"github.com/kediff/kediff/dist"
	"github.com/kediff/kediff/kernels"
)

// gradReducer averages the gradient buffer over the ranks in buckets while
// the backward pass still runs, as PyTorch DDP does: the model reports
// which tail of Params.Grad is final (unet.Model.GradsReady), and once that
// tail holds a bucket's worth of values not yet sent, a goroutine
// all-reduces it while the backward pass goes on with earlier layers.
// Buckets go out in the same order on every rank (the layer order), which
// is what a Comm needs.
type gradReducer struct {
	comm   dist.Comm
	grad   []float32 // host memory
	bucket int       // values per bucket
	next   int       // grad[next:] has been handed to the goroutine
	work   chan [2]int
	done   chan error
}

func newGradReducer(comm dist.Comm, grad []float32, bucketMB float64) *gradReducer {
	return &gradReducer{comm: comm, grad: grad, bucket: max(1, int(bucketMB*(1<<20)/4))}
}

// start begins one backward pass's reduction.
func (r *gradReducer) start() {
	r.next = len(r.grad)
	// Room for every bucket: the backward pass never waits on the sender.
	r.work = make(chan [2]int, len(r.grad)/r.bucket+2)
	r.done = make(chan error, 1)
	go func() {
		var err error
		for w := range r.work {
			if err == nil {
				err = r.comm.AllReduceMean(r.grad[w[0]:w[1]])
			}
		}
		r.done <- err
	}()
}

// ready is unet.Model.GradsReady: grad[from:] is final.
func (r *gradReducer) ready(from int) {
	if r.next-from >= r.bucket {
		r.work <- [2]int{from, r.next}
		r.next = from
	}
}

// finish sends what is left and waits for every bucket.
func (r *gradReducer) finish() error {
	if r.next > 0 {
		r.work <- [2]int{0, r.next}
		r.next = 0
	}
	close(r.work)
	return <-r.done
}

// onHost reports whether a backend's buffers are host memory a Comm can
// read (the CPU kernels); device buffers are staged through the host,
// unless the Comm reduces device memory itself (NCCL).
func onHost(be kernels.Backend) bool {
	_, ok := be.(*kernels.CPU)
	return ok
}

// commTakes reports whether comm can reduce be's buffers directly: a
// dist.DeviceComm (NCCL) takes GPU buffers, the others host memory.
func commTakes(comm dist.Comm, be kernels.Backend) bool {
	if _, ok := comm.(dist.DeviceComm); ok {
		return !onHost(be)
	}
	return onHost(be)
}

// hostComm is the Comm for host buffers (losses, the start check).
func hostComm(comm dist.Comm) dist.Comm {
	if d, ok := comm.(dist.DeviceComm); ok {
		return d.Host()
	}
	return comm
}

// broadcastBuf replaces buf (a backend buffer) on every rank with rank 0's.
func broadcastBuf(comm dist.Comm, be kernels.Backend, buf []float32) error {
	if commTakes(comm, be) {
		return comm.Broadcast(buf, 0)
	}
	h := make([]float32, len(buf))
	be.CopyToHost(h, buf)
	if err := hostComm(comm).Broadcast(h, 0); err != nil {
		return err
	}
	be.CopyToDevice(buf, h)
	return nil
}

// allReduceMeanBuf averages buf (a backend buffer) over the ranks.
func allReduceMeanBuf(comm dist.Comm, be kernels.Backend, buf []float32) error {
	if commTakes(comm, be) {
		return comm.AllReduceMean(buf)
	}
	h := make([]float32, len(buf))
	be.CopyToHost(h, buf)
	if err := hostComm(comm).AllReduceMean(h); err != nil {
		return err
	}
	be.CopyToDevice(buf, h)
	return nil
}

// mergeStreams gives every rank every data stream's position: each rank
// knows only its own streams' (zeros elsewhere), so a sum over the ranks
// merges them. The integers travel as 16-bit limbs, which float32 sums
// exactly.
func mergeStreams(comm dist.Comm, pos []StreamState) error {
	const limbs = 6 // epoch: 2, samples: 4
	buf := make([]float32, limbs*len(pos))
	for i, p := range pos {
		v := [2]uint64{uint64(uint32(p.Epoch)), uint64(p.Samples)}
		b := buf[limbs*i:]
		for j := range 2 {
			b[j] = float32(v[0] >> (16 * j) & 0xffff)
		}
		for j := range 4 {
			b[2+j] = float32(v[1] >> (16 * j) & 0xffff)
		}
	}
	if err := comm.AllReduceSum(buf); err != nil {
		return err
	}
	for i := range pos {
		b := buf[limbs*i:]
		var e, n uint64
		for j := range 2 {
			e |= uint64(b[j]) << (16 * j)
		}
		for j := range 4 {
			n |= uint64(b[2+j]) << (16 * j)
		}
		pos[i] = StreamState{Epoch: int(int32(uint32(e))), Samples: int64(n)}
	}
	return nil
}

// syncStart makes every rank start from rank 0's weights, optimizer state
// and EMA (fresh runs agree anyway; this also catches ranks that resumed
// from different checkpoints), after checking that every rank is at rank
// 0's step and data position.
func (t *Trainer) syncStart() error {
	comm := t.comm
	if comm.Size() == 1 {
		return nil
	}
	st := t.State
	var streams uint64
	for i, p := range st.Loader.Streams {
		streams = streams*1000003 + uint64(i+1)*uint64(p.Epoch+1) + uint64(p.Samples)
	}
	words := []uint64{uint64(st.Step), uint64(st.Loader.Epoch), uint64(st.Loader.Samples), streams, st.Forwards, uint64(t.Model.Params.Step), uint64(len(t.Model.Params.Data)), uint64(t.Tok.Size())}
	buf := make([]float32, 2*len(words))
	for i, w := range words {
		buf[2*i] = math.Float32frombits(uint32(w))
		buf[2*i+1] = math.Float32frombits(uint32(w >> 32))
	}
	if err := hostComm(comm).Broadcast(buf, 0); err != nil {
		return err
	}
	names := []string{"step", "loader epoch", "loader samples", "data stream positions (hash)", "forward count", "optimizer step", "parameter count", "vocabulary size"}
	for i, w := range words {
		got := uint64(math.Float32bits(buf[2*i])) | uint64(math.Float32bits(buf[2*i+1]))<<32
		if got != w {
			return fmt.Errorf("train: rank %d starts at %s %d, rank 0 at %d: every rank must resume the same checkpoint (--out on a file system all ranks share) with the same config and data",
				comm.Rank(), names[i], w, got)
		}
	}
	p, be := t.Model.Params, t.Model.Backend()
	for _, b := range [][]float32{p.Data, p.M, p.V, t.EMA} {
		if b == nil {
			continue
		}
		if err := broadcastBuf(comm, be, b); err != nil {
			return err
		}
	}
	return nil
}
