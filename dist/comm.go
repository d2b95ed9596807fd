package dist

import "fmt"

// Comm is a communicator: the collectives data-parallel training needs,
// over float32 buffers. Every rank must call the same collectives in the
// same order with buffers of the same length, as with MPI; a Comm is used
// by one goroutine at a time. After an error the Comm is broken: later
// calls return an error too, and the job should end.
//
// bf16 buffers are not here yet; they will come with the NCCL
// implementation, where halving the bytes pays.
type Comm interface {
	Rank() int
	Size() int
	// AllReduceSum replaces buf on every rank with the element-wise sum of
	// every rank's buf.
	AllReduceSum(buf []float32) error
	// AllReduceMean is AllReduceSum divided by Size.
	AllReduceMean(buf []float32) error
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

func (single) Rank() int                     { return 0 }
func (single) Size() int                     { return 1 }
func (single) AllReduceSum([]float32) error  { return nil }
func (single) AllReduceMean([]float32) error { return nil }
func (single) Barrier() error                { return nil }
func (single) Close() error                  { return nil }

func (single) Broadcast(_ []float32, root int) error { return checkRoot(root, 1) }

func checkRoot(root, world int) error {
	if root < 0 || root >= world {
		return fmt.Errorf("dist: broadcast root %d is outside the world of %d ranks", root, world)
	}
	return nil
}
