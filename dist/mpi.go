//go:build cgo

package dist

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "mpi_shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// mpiCgo says this build can load Open MPI.
const mpiCgo = true

// MPIOptions tune DialMPI; the zero value is ready to use.
type MPIOptions struct {
	// Timeout bounds each collective, MPI_Init and MPI_Finalize: a call
	// that has not returned by then fails, and the Comm is broken. It must
	// exceed the longest time one rank spends away while the others wait
	// in a collective, such as rank 0 writing a checkpoint. Default 5
	// minutes.
	Timeout time.Duration
}

// mpiLibraries are the names DialMPI and MPIAvailable load, in order:
// Open MPI 4 and 5's soname, then the development link.
var mpiLibraries = []string{"libmpi.so.40", "libmpi.so"}

// mpiMaxCount is the most elements one MPI call moves: MPI counts are int.
// Tests lower it to exercise the split.
var mpiMaxCount int64 = 1<<31 - 1

// mpiProcess guards loading the library and starting MPI, which happens
// at most once per process: MPI cannot start again after MPI_Finalize.
var mpiProcess struct {
	sync.Mutex
	started bool
}

// MPIAvailable returns nil when Open MPI's libmpi can be loaded, or an
// error that says what to install and what works without it.
func MPIAvailable() error { return loadMPI(mpiLibraries) }

// loadMPI loads the first of libs that opens and has the symbols this
// package calls.
func loadMPI(libs []string) error {
	mpiProcess.Lock()
	defer mpiProcess.Unlock()
	var why []string
	for _, lib := range libs {
		name := C.CString(lib)
		var msg [512]C.char
		rc := C.kd_mpi_open(name, &msg[0], C.int(len(msg)))
		C.free(unsafe.Pointer(name))
		if rc == 0 {
			return nil
		}
		why = append(why, C.GoString(&msg[0]))
	}
	return fmt.Errorf("dist: cannot load Open MPI's library (%s): install Open MPI (Debian: apt-get install openmpi-bin) and start the job with mpirun, or without MPI use the TCP rendezvous (set MASTER_ADDR and MASTER_PORT)",
		strings.Join(why, "; "))
}

// DialMPI joins the job described by info (from Discover) over Open MPI,
// whose libmpi it loads at run time: building needs no MPI, and a machine
// without it gets an error saying what to install. It calls
// MPI_Init_thread and checks that MPI numbers this process as info does.
// A world of one needs no MPI and gets Single(). MPI starts once per
// process: a second DialMPI, even after Close, is an error.
//
// Every MPI call runs on one goroutine locked to its OS thread, from
// MPI_Init_thread (MPI_THREAD_FUNNELED) to MPI_Finalize in Close; the
// Comm's methods hand it their work and wait, so they may be called from
// any goroutine, one call at a time. The buffers are MPI's for the length
// of a call, without a copy.
//
// Reduction order: AllReduceSum is MPI_Allreduce (MPI_SUM over MPI_FLOAT,
// in place, split into calls of 2^31-1 elements at most), whose result is
// identical on every rank, as Open MPI's algorithms give it (the MPI
// standard advises this but does not require it; the tests check it with 2
// and 3 ranks). The order of the additions is Open MPI's choice, which
// depends on the world size, the message size and its settings: the sum
// is not bit-identical to DialTCP's rank-ordered sum or to one process's,
// since float addition is not associative. AllReduceMean divides the sum
// by Size on every rank. Open MPI 4.1 has no bfloat16 type, so
// AllReduceSumBF16 widens to float32, moves float32 and rounds the sum to
// bf16 once.
//
// A call that does not return within opts.Timeout fails, and the Comm is
// broken: the MPI call stays stuck on its thread and may still write into
// its buffer, so the caller should end the process, not reuse the buffer.
// Under mpirun the timeout is the backstop: a rank that exits makes
// mpirun end the whole job.
func DialMPI(info Info, opts MPIOptions) (Comm, error) { return dialMPI(info, opts, mpiLibraries) }

func dialMPI(info Info, opts MPIOptions, libs []string) (Comm, error) {
	if info.World < 1 || info.Rank < 0 || info.Rank >= info.World {
		return nil, fmt.Errorf("dist: rank %d of %d is not a place in a job (want 0 <= rank < world)", info.Rank, info.World)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if err := loadMPI(libs); err != nil {
		return nil, err
	}
	if info.World == 1 {
		return Single(), nil
	}
	mpiProcess.Lock()
	started := mpiProcess.started
	mpiProcess.started = true
	mpiProcess.Unlock()
	if started {
		return nil, fmt.Errorf("dist: MPI rank %d: MPI was already started in this process, and it cannot start twice (even after Close): keep one Comm per process", info.Rank)
	}
	c := &mpiComm{rank: info.Rank, world: info.World, timeout: opts.Timeout, calls: make(chan *mpiCall)}
	up := make(chan error, 1)
	go c.own(info, up)
	t := time.NewTimer(opts.Timeout)
	defer t.Stop()
	select {
	case err := <-up:
		if err != nil {
			return nil, err
		}
	case <-t.C:
		close(c.calls) // ends the owner if MPI_Init_thread ever returns
		return nil, fmt.Errorf("dist: MPI rank %d: MPI_Init_thread did not return within %v (is every rank started? see mpirun's output)", info.Rank, opts.Timeout)
	}
	return c, nil
}

// mpiComm is the Comm DialMPI returns.
type mpiComm struct {
	rank, world int
	timeout     time.Duration
	calls       chan *mpiCall // to the goroutine that owns MPI; closed by Close

	mu     sync.Mutex // one call at a time; guards what follows
	seq    int        // collectives begun
	broken error      // the error that ended the job
	closed bool
}

// mpiCall is one request to the owner goroutine.
type mpiCall struct {
	kind  callKind
	ptr   unsafe.Pointer // the buffer's first element; nil when n is 0
	n     int64          // elements
	root  int
	chunk int64
	done  chan error // buffered: the owner never blocks on a caller that gave up
}

type callKind int

const (
	callAllReduce callKind = iota
	callBroadcast
	callBroadcastBytes
	callBarrier
	callFinalize
)

// own is the goroutine that makes every MPI call of the process, on its
// own OS thread. The thread is never unlocked: it ends with the goroutine.
func (c *mpiComm) own(info Info, up chan<- error) {
	runtime.LockOSThread()
	if err := mpiInit(info); err != nil {
		up <- err
		return
	}
	up <- nil
	for call := range c.calls {
		call.done <- call.run(c.rank)
		if call.kind == callFinalize {
			return
		}
	}
}

// mpiInit starts MPI on the calling thread and checks its numbering.
func mpiInit(info Info) error {
	var initialized, finalized C.int
	if rc := C.kd_mpi_state(&initialized, &finalized); rc != 0 {
		return mpiError(info.Rank, "MPI_Initialized", rc)
	}
	if initialized != 0 || finalized != 0 {
		return fmt.Errorf("dist: MPI rank %d: MPI was already started in this process by other code, and it cannot start twice", info.Rank)
	}
	var provided C.int
	if rc := C.kd_mpi_init(&provided); rc != 0 {
		return mpiError(info.Rank, "MPI_Init_thread", rc)
	}
	var rank, size C.int
	if rc := C.kd_mpi_rank_size(&rank, &size); rc != 0 {
		return mpiError(info.Rank, "MPI_Comm_rank", rc)
	}
	if int(rank) != info.Rank || int(size) != info.World {
		// MPI stays up: finalizing would wait for ranks that may be
		// in collectives already. The process should exit.
		return fmt.Errorf("dist: MPI says this process is rank %d of %d but its launcher (%s) says rank %d of %d: start every rank with mpirun (or srun --mpi=pmix), or without MPI use the TCP rendezvous (set MASTER_ADDR and MASTER_PORT)",
			rank, size, info.Launcher, info.Rank, info.World)
	}
	return nil
}

// run makes the MPI call; on the owner's thread only.
func (call *mpiCall) run(rank int) error {
	var rc C.int
	var what string
	switch call.kind {
	case callAllReduce:
		rc, what = C.kd_mpi_allreduce_sum_f32((*C.float)(call.ptr), C.int64_t(call.n), C.int64_t(call.chunk)), "MPI_Allreduce"
	case callBroadcast, callBroadcastBytes:
		bytes := C.int(0)
		if call.kind == callBroadcastBytes {
			bytes = 1
		}
		rc, what = C.kd_mpi_bcast(call.ptr, C.int64_t(call.n), bytes, C.int(call.root), C.int64_t(call.chunk)), "MPI_Bcast"
	case callBarrier:
		rc, what = C.kd_mpi_barrier(), "MPI_Barrier"
	case callFinalize:
		rc, what = C.kd_mpi_finalize(), "MPI_Finalize"
	}
	if rc != 0 {
		return mpiError(rank, what, rc)
	}
	return nil
}

// mpiError names a failed MPI call. Open MPI's default error handler ends
// the job before most errors get here.
func mpiError(rank int, what string, rc C.int) error {
	var msg [512]C.char
	C.kd_mpi_error_string(rc, &msg[0], C.int(len(msg)))
	return fmt.Errorf("dist: MPI rank %d: %s failed: %s (error %d)", rank, what, C.GoString(&msg[0]), int(rc))
}

func (c *mpiComm) String() string { return "MPI (Open MPI)" }
func (c *mpiComm) Rank() int      { return c.rank }
func (c *mpiComm) Size() int      { return c.world }

func (c *mpiComm) AllReduceSum(buf []float32) error {
	return c.do("AllReduceSum", callAllReduce, unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 0)
}

func (c *mpiComm) AllReduceMean(buf []float32) error {
	if err := c.do("AllReduceMean", callAllReduce, unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 0); err != nil {
		return err
	}
	w := float32(c.world)
	for i := range buf {
		buf[i] /= w
	}
	return nil
}

// AllReduceSumBF16 moves float32: Open MPI 4.1 has no bfloat16 datatype.
// The sum is rounded to bf16 once, as the Comm interface says.
func (c *mpiComm) AllReduceSumBF16(buf []uint16) error { return allReduceBF16(c, buf) }

func (c *mpiComm) Broadcast(buf []float32, root int) error {
	if err := checkRoot(root, c.world); err != nil {
		return err
	}
	return c.do("Broadcast", callBroadcast, unsafe.Pointer(unsafe.SliceData(buf)), len(buf), root)
}

// broadcastBytes is Broadcast over bytes (MPI_BYTE), for small messages
// such as an NCCL unique id.
func (c *mpiComm) broadcastBytes(buf []byte, root int) error {
	if err := checkRoot(root, c.world); err != nil {
		return err
	}
	return c.do("Broadcast", callBroadcastBytes, unsafe.Pointer(unsafe.SliceData(buf)), len(buf), root)
}

func (c *mpiComm) Barrier() error { return c.do("Barrier", callBarrier, nil, 0, 0) }

// do hands one collective to the owner goroutine and waits for it, at most
// c.timeout.
func (c *mpiComm) do(name string, kind callKind, ptr unsafe.Pointer, n, root int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("dist: MPI rank %d: %s after Close", c.rank, name)
	}
	if c.broken != nil {
		return c.broken
	}
	c.seq++
	if n == 0 {
		ptr = nil
	}
	call := &mpiCall{kind: kind, ptr: ptr, n: int64(n), root: root, chunk: mpiMaxCount, done: make(chan error, 1)}
	if err := c.wait(call); err != nil {
		if errors.Is(err, errMPITimeout) {
			err = fmt.Errorf("dist: MPI rank %d: %s %d timed out after %v: a rank died or stopped; mpirun ends the job when a rank exits (are all ranks calling the same collectives with the same lengths? is MPIOptions.Timeout shorter than a rank's pause, such as a checkpoint?)",
				c.rank, name, c.seq, c.timeout)
		}
		c.broken = err
		return err
	}
	return nil
}

var errMPITimeout = errors.New("timed out")

// wait sends call to the owner and waits for its answer or the timeout.
func (c *mpiComm) wait(call *mpiCall) error {
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	c.calls <- call // the owner is idle: the last call returned
	select {
	case err := <-call.done:
		return err
	case <-t.C:
		return errMPITimeout
	}
}

// Close finalizes MPI (MPI_Finalize) and ends the owner goroutine; later
// calls to Close return nil. A broken Comm is not finalized, since its
// owner is stuck in a call, and the process should exit.
func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	defer close(c.calls)
	if c.broken != nil {
		return nil
	}
	err := c.wait(&mpiCall{kind: callFinalize, done: make(chan error, 1)})
	if errors.Is(err, errMPITimeout) {
		err = fmt.Errorf("dist: MPI rank %d: MPI_Finalize did not return within %v (did another rank stop before Close? see mpirun's output)", c.rank, c.timeout)
	}
	return err
}
