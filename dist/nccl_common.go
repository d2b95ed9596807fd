package dist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"
	"unsafe"
)

// NCCLOptions tune DialNCCL; the zero value is ready to use with buffers in
// plain device memory (cudaMalloc's or cuMemAlloc's).
type NCCLOptions struct {
	// Timeout bounds each collective (with the wait for the device's queued
	// work, see Stream), ncclCommInitRank and ncclCommDestroy: a
	// collective that has not finished by then is aborted and the Comm is
	// broken. It must exceed the longest time one rank spends away while
	// the others wait in a collective, such as rank 0 writing a
	// checkpoint. Default 5 minutes.
	Timeout time.Duration

	// DevicePointer maps a buffer handed to a collective (the address of
	// its first element, its length, and whether it holds bf16) to the
	// device address NCCL reads and writes, or says why it cannot. nil
	// takes the address as a device address. kernels/cuda's buffers are
	// host-side views of device memory and need the mapping its C library
	// keeps (kernels/cuda's package doc, Buffers). Every address is checked
	// to lie in one device allocation before NCCL sees it.
	DevicePointer func(addr uintptr, n int, bf16 bool) (uintptr, error)

	// Stream is the CUDA stream (a cudaStream_t or CUstream, as a number)
	// the collectives are queued on, after the work already queued there,
	// so kernels that write the buffers on the same stream need no other
	// synchronization. 0: DialNCCL makes a stream of its own, and each
	// collective first waits for all the work queued on the device, on
	// every stream (cuCtxSynchronize).
	Stream uintptr
}

// NCCL's ABI, from nccl.h (NVIDIA/nccl src/nccl.h.in): ncclUniqueId is
// `typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; }` with
// NCCL_UNIQUE_ID_BYTES 128; ncclDataType_t has ncclFloat32 = 7 and
// ncclBfloat16 = 9 (2.10 and later, CUDA 11 builds); ncclRedOp_t has
// ncclSum = 0 and ncclAvg = 4 (2.10 and later); ncclResult_t has
// ncclSuccess = 0 and ncclInProgress = 7; NCCL_VERSION(X,Y,Z) is
// X*10000 + Y*100 + Z from 2.9 on (X*1000 + Y*100 + Z before).
const (
	ncclIDBytes    = 128
	ncclFloat32    = 7
	ncclBfloat16   = 9
	ncclSum        = 0
	ncclAvg        = 4
	ncclInProgress = 7
	ncclMinVersion = 21000 // 2.10.0: ncclAvg and ncclBfloat16
)

// NCCL's library: its soname, and the variable that names it explicitly.
const (
	ncclLibName = "libnccl.so.2"
	ncclLibEnv  = "KEDIFF_NCCL_LIB"
)

// ncclGrace is how much longer than the Timeout a caller waits for a call
// on the Comm's thread before it gives up on that thread: the thread's own
// deadline checks answer first unless a call into NCCL or CUDA blocks.
const ncclGrace = 30 * time.Second

// checkNCCLArgs checks DialNCCL's arguments before anything is loaded.
func checkNCCLArgs(info Info, boot Comm) error {
	if info.World < 1 || info.Rank < 0 || info.Rank >= info.World {
		return fmt.Errorf("dist: rank %d of %d is not a place in a job (want 0 <= rank < world)", info.Rank, info.World)
	}
	if boot == nil {
		return fmt.Errorf("dist: rank %d: DialNCCL needs a bootstrap Comm (DialTCP's, DialMPI's, or Single() for a world of one) to send NCCL's unique id", info.Rank)
	}
	if boot.Rank() != info.Rank || boot.Size() != info.World {
		return fmt.Errorf("dist: DialNCCL for rank %d of %d was given a bootstrap Comm of rank %d of %d", info.Rank, info.World, boot.Rank(), boot.Size())
	}
	return nil
}

// packNCCLID carries an ncclUniqueId's 128 bytes as 32 float32 values
// whose bit patterns are its bytes, 4 to a value, little-endian, so it can
// travel through Comm.Broadcast. The values are never computed with: a NaN
// payload or a negative zero arrives as it left (Broadcast moves bits).
func packNCCLID(id [ncclIDBytes]byte) [ncclIDBytes / 4]float32 {
	var w [ncclIDBytes / 4]float32
	for i := range w {
		w[i] = math.Float32frombits(binary.LittleEndian.Uint32(id[4*i:]))
	}
	return w
}

// unpackNCCLID is packNCCLID's inverse.
func unpackNCCLID(w [ncclIDBytes / 4]float32) [ncclIDBytes]byte {
	var id [ncclIDBytes]byte
	for i, v := range w {
		binary.LittleEndian.PutUint32(id[4*i:], math.Float32bits(v))
	}
	return id
}

// ncclAgree tells every rank whether every rank managed step: each adds a
// flag at its own index through boot's all-reduce, so a rank that failed
// locally makes every rank fail, with an error naming it, instead of
// leaving the others waiting in NCCL. A rank's own error comes first.
func ncclAgree(boot Comm, rank, world int, step string, local error) error {
	flags := make([]float32, world)
	if local != nil {
		flags[rank] = 1
	}
	err := boot.AllReduceSum(flags)
	switch {
	case local != nil:
		return local
	case err != nil:
		return fmt.Errorf("dist: rank %d: NCCL: agreeing with the other ranks that every rank could %s: %w", rank, step, err)
	}
	var bad []int
	for r, f := range flags {
		if f != 0 {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("dist: rank %d: NCCL: ranks %v could not %s (see their logs)", rank, bad, step)
	}
	return nil
}

// errNCCLTimeout is ncclAwait's answer when the deadline came first.
var errNCCLTimeout = errors.New("timed out")

// ncclAwait polls a queued NCCL operation until done says it finished,
// failed reports an error from NCCL (a peer that died, a network error),
// or deadline passes (errNCCLTimeout). done is asked first, so work that
// finished is never reported as timed out. Between polls it sleeps from
// 10µs, doubling up to 1ms.
func ncclAwait(deadline time.Time, done func() (bool, error), failed func() error, now func() time.Time, sleep func(time.Duration)) error {
	wait := 10 * time.Microsecond
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := failed(); err != nil {
			return err
		}
		if !now().Before(deadline) {
			return errNCCLTimeout
		}
		sleep(wait)
		wait = min(2*wait, time.Millisecond)
	}
}

// ncclVersionString reads an NCCL_VERSION_CODE: 22105 is "2.21.5".
func ncclVersionString(code int) string {
	if code >= 20900 {
		return fmt.Sprintf("%d.%d.%d", code/10000, code%10000/100, code%100)
	}
	return fmt.Sprintf("%d.%d.%d", code/1000, code%1000/100, code%100)
}

// ncclCandidates lists where NCCL is looked for: $KEDIFF_NCCL_LIB alone
// when set; else next to the executable, in each folder of
// $KEDIFF_CUDA_LIBS (where kernels/cuda finds cuBLAS), then the dynamic
// loader's path (LD_LIBRARY_PATH, Debian's libnccl2).
func ncclCandidates(getenv func(string) string, exeDir string) []string {
	if p := getenv(ncclLibEnv); p != "" {
		return []string{p}
	}
	var out []string
	if exeDir != "" {
		out = append(out, filepath.Join(exeDir, ncclLibName))
	}
	for _, d := range strings.Split(getenv("KEDIFF_CUDA_LIBS"), ":") {
		if d != "" {
			out = append(out, filepath.Join(d, ncclLibName))
		}
	}
	return append(out, ncclLibName)
}

// ncclMissing is loadNCCL's error when no candidate loaded; tried holds
// each candidate with why it failed.
func ncclMissing(tried []string) error {
	return fmt.Errorf("NCCL is not installed: %s could not be loaded (tried %s); install it with pip (pip install nvidia-nccl-cu12, or nvidia-nccl-cu13) and set %s to its nvidia/nccl/lib/%s, or install Debian's libnccl2 (from non-free: apt-get install libnccl2), or set %s to the library's path",
		ncclLibName, strings.Join(tried, "; "), ncclLibEnv, ncclLibName, ncclLibEnv)
}

// addrOf is the address of buf's first element (of its backing array when
// buf is empty).
func addrOf[T any](buf []T) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(buf))) }
