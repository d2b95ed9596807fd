package dist

import (
	"fmt"
	"math"
	"sync"
)

// Comm is a communicator: the collectives data-parallel training needs,
// over float32 buffers. Every rank must call the same collectives in the
// same order with buffers of the same length, as with MPI; a Comm is used
// by one goroutine at a time. After an error the Comm is broken: later
// calls return an error too, and the job should end.
//
// bf16 buffers (AllReduceSumBF16) hold bfloat16 values as their bit
// patterns (the upper half of a float32); they are summed in float32 and
// rounded to bf16 (nearest even) once, at the end.
type Comm interface {
	Rank() int
	Size() int
	// AllReduceSum replaces buf on every rank with the element-wise sum of
	// every rank's buf.
	AllReduceSum(buf []float32) error
	// AllReduceMean is AllReduceSum divided by Size.
	AllReduceMean(buf []float32) error
	// AllReduceSumBF16 is AllReduceSum over bfloat16 values.
	AllReduceSumBF16(buf []uint16) error
	// Broadcast replaces buf on every rank with root's buf.
	Broadcast(buf []float32, root int) error
	// Barrier returns once every rank has called it.
	Barrier() error
	Close() error
}

// Single returns the communicator of a job of one process: the collectives
// leave buf as it is.
func Single() Comm { return single{} }

type single struct{}

// IsSingle reports whether c is Single(): no other process, nothing to
// communicate. A Comm of one rank that is not Single (NCCL in a world of
// one) still runs its collectives, which is how their cost is measured.
func IsSingle(c Comm) bool {
	_, ok := c.(single)
	return ok
}

func (single) Rank() int                       { return 0 }
func (single) Size() int                       { return 1 }
func (single) AllReduceSum([]float32) error    { return nil }
func (single) AllReduceMean([]float32) error   { return nil }
func (single) Barrier() error                  { return nil }
func (single) AllReduceSumBF16([]uint16) error { return nil }
func (single) Close() error                    { return nil }

func (single) Broadcast(_ []float32, root int) error { return checkRoot(root, 1) }

func checkRoot(root, world int) error {
	if root < 0 || root >= world {
		return fmt.Errorf("dist: broadcast root %d is outside the world of %d ranks", root, world)
	}
	return nil
}

// BF16ToFloat32 widens bfloat16 bit patterns to float32 (exact).
func BF16ToFloat32(dst []float32, src []uint16) {
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// Float32ToBF16 rounds float32 values to bfloat16 bit patterns, to nearest
// even as PyTorch's .to(torch.bfloat16) does; NaN stays a (quiet) NaN.
func Float32ToBF16(dst []uint16, src []float32) {
	for i, v := range src {
		b := math.Float32bits(v)
		if v != v {
			dst[i] = uint16(b>>16) | 0x40
			continue
		}
		b += 0x7fff + (b>>16)&1
		dst[i] = uint16(b >> 16)
	}
}

// allReduceBF16 runs a bf16 all-reduce through a float32 one: the values are
// widened, summed in float32 and rounded once. The float32 buffer is kept
// for the next call (gradients come back every step at the same size).
func allReduceBF16(c Comm, buf []uint16) error {
	p, _ := widePool.Get().(*[]float32)
	if p == nil || cap(*p) < len(buf) {
		p = new([]float32)
		*p = make([]float32, len(buf))
	}
	f := (*p)[:len(buf)]
	BF16ToFloat32(f, buf)
	if err := c.AllReduceSum(f); err != nil {
		return err // f is not reused: a timed-out call may still write it
	}
	Float32ToBF16(buf, f)
	widePool.Put(p)
	return nil
}

var widePool sync.Pool
