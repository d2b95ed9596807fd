//go:build cgo

package dist

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// NCCL and the CUDA driver, declared here: both are opened at run time, so
// building needs neither nccl.h nor cuda.h. The types and constants are
// nccl_common.go's; every handle (communicator, context, stream) is a
// pointer and every device address a 64-bit integer, as in their headers.

typedef struct { char internal[128]; } kd_nccl_id;
typedef void *kd_nccl_comm;

typedef struct {
	void *h;
	int (*get_version)(int *);
	int (*get_unique_id)(kd_nccl_id *);
	int (*comm_init_rank)(kd_nccl_comm *, int, kd_nccl_id, int);
	int (*all_reduce)(const void *, void *, size_t, int, int, kd_nccl_comm, void *);
	int (*broadcast)(const void *, void *, size_t, int, int, kd_nccl_comm, void *);
	int (*async_error)(kd_nccl_comm, int *);
	int (*abort)(kd_nccl_comm);
	int (*destroy)(kd_nccl_comm);
	const char *(*error_string)(int);
	const char *(*last_error)(kd_nccl_comm); // NCCL 2.13 and later; else NULL
} kd_nccl_lib;

static const char *kd_nccl_open(kd_nccl_lib *l, const char *path) {
	l->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!l->h) return dlerror();
#define SYM(f, n) if (!(*(void **)&l->f = dlsym(l->h, n))) return "symbol " n " missing (NCCL too old?)";
	SYM(get_version, "ncclGetVersion") SYM(get_unique_id, "ncclGetUniqueId") SYM(comm_init_rank, "ncclCommInitRank")
	SYM(all_reduce, "ncclAllReduce") SYM(broadcast, "ncclBroadcast") SYM(async_error, "ncclCommGetAsyncError")
	SYM(abort, "ncclCommAbort") SYM(destroy, "ncclCommDestroy") SYM(error_string, "ncclGetErrorString")
#undef SYM
	*(void **)&l->last_error = dlsym(l->h, "ncclGetLastError");
	return NULL;
}

static int kd_nccl_version(kd_nccl_lib *l, int *v) { return l->get_version(v); }
static int kd_nccl_unique_id(kd_nccl_lib *l, void *id) { return l->get_unique_id((kd_nccl_id *)id); }
static int kd_nccl_init_rank(kd_nccl_lib *l, kd_nccl_comm *c, int world, const void *id, int rank) {
	kd_nccl_id v;
	memcpy(&v, id, sizeof v);
	return l->comm_init_rank(c, world, v, rank);
}
static int kd_nccl_all_reduce(kd_nccl_lib *l, uint64_t buf, size_t n, int dt, int op, kd_nccl_comm c, uintptr_t s) {
	void *p = (void *)(uintptr_t)buf;
	return l->all_reduce(p, p, n, dt, op, c, (void *)s);
}
static int kd_nccl_broadcast(kd_nccl_lib *l, uint64_t buf, size_t n, int dt, int root, kd_nccl_comm c, uintptr_t s) {
	void *p = (void *)(uintptr_t)buf;
	return l->broadcast(p, p, n, dt, root, c, (void *)s);
}
static int kd_nccl_async_error(kd_nccl_lib *l, kd_nccl_comm c, int *e) { return l->async_error(c, e); }
static int kd_nccl_abort(kd_nccl_lib *l, kd_nccl_comm c) { return l->abort(c); }
static int kd_nccl_destroy(kd_nccl_lib *l, kd_nccl_comm c) { return l->destroy(c); }
static const char *kd_nccl_error_string(kd_nccl_lib *l, int r) { return l->error_string(r); }
static const char *kd_nccl_last_error(kd_nccl_lib *l, kd_nccl_comm c) { return l->last_error ? l->last_error(c) : NULL; }

// The CUDA driver API (libcuda.so.1, always there with the driver, unlike
// libcudart): the _v2 names are what cuda.h's macros call.
typedef struct {
	void *h;
	int (*init)(unsigned);
	int (*device_get_count)(int *);
	int (*device_get)(int *, int);
	int (*primary_ctx_retain)(void **, int);
	int (*ctx_set_current)(void *);
	int (*ctx_synchronize)(void);
	int (*stream_create)(void **, unsigned);
	int (*stream_destroy)(void *);
	int (*stream_query)(void *);
	int (*mem_get_address_range)(uint64_t *, size_t *, uint64_t);
	int (*mem_alloc)(uint64_t *, size_t);
	int (*mem_free)(uint64_t);
	int (*memcpy_htod)(uint64_t, const void *, size_t);
	int (*memcpy_dtoh)(void *, uint64_t, size_t);
	int (*error_string)(int, const char **);
} kd_cu_lib;

static const char *kd_cu_open(kd_cu_lib *l) {
	l->h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!l->h) return dlerror();
#define SYM(f, n) if (!(*(void **)&l->f = dlsym(l->h, n))) return "symbol " n " missing (driver too old?)";
	SYM(init, "cuInit") SYM(device_get_count, "cuDeviceGetCount") SYM(device_get, "cuDeviceGet")
	SYM(primary_ctx_retain, "cuDevicePrimaryCtxRetain") SYM(ctx_set_current, "cuCtxSetCurrent")
	SYM(ctx_synchronize, "cuCtxSynchronize") SYM(stream_create, "cuStreamCreate") SYM(stream_destroy, "cuStreamDestroy_v2")
	SYM(stream_query, "cuStreamQuery") SYM(mem_get_address_range, "cuMemGetAddressRange_v2") SYM(mem_alloc, "cuMemAlloc_v2")
	SYM(mem_free, "cuMemFree_v2") SYM(memcpy_htod, "cuMemcpyHtoD_v2") SYM(memcpy_dtoh, "cuMemcpyDtoH_v2")
	SYM(error_string, "cuGetErrorString")
#undef SYM
	return NULL;
}

static int kd_cu_init(kd_cu_lib *l) { return l->init(0); }
static int kd_cu_device_count(kd_cu_lib *l, int *n) { return l->device_get_count(n); }
static int kd_cu_primary_ctx(kd_cu_lib *l, int ordinal, void **ctx) {
	int dev = 0, r = l->device_get(&dev, ordinal);
	return r ? r : l->primary_ctx_retain(ctx, dev);
}
static int kd_cu_set_current(kd_cu_lib *l, void *ctx) { return l->ctx_set_current(ctx); }
static int kd_cu_synchronize(kd_cu_lib *l) { return l->ctx_synchronize(); }
static int kd_cu_stream_create(kd_cu_lib *l, uintptr_t *s) {
	void *p = NULL;
	int r = l->stream_create(&p, 1); // CU_STREAM_NON_BLOCKING: no implicit waits on stream 0
	*s = (uintptr_t)p;
	return r;
}
static int kd_cu_stream_destroy(kd_cu_lib *l, uintptr_t s) { return l->stream_destroy((void *)s); }
static int kd_cu_stream_query(kd_cu_lib *l, uintptr_t s) { return l->stream_query((void *)s); }
static int kd_cu_range(kd_cu_lib *l, uint64_t p, uint64_t *base, uint64_t *size) {
	size_t n = 0;
	int r = l->mem_get_address_range(base, &n, p);
	*size = n;
	return r;
}
static int kd_cu_alloc(kd_cu_lib *l, size_t bytes, uint64_t *p) { return l->mem_alloc(p, bytes); }
static int kd_cu_free(kd_cu_lib *l, uint64_t p) { return l->mem_free(p); }
static int kd_cu_htod(kd_cu_lib *l, uint64_t dst, const void *src, size_t n) { return l->memcpy_htod(dst, src, n); }
static int kd_cu_dtoh(kd_cu_lib *l, void *dst, uint64_t src, size_t n) { return l->memcpy_dtoh(dst, src, n); }
static const char *kd_cu_error_string(kd_cu_lib *l, int r) {
	const char *s = NULL;
	if (l->error_string(r, &s) != 0 || !s) return "unknown CUDA error";
	return s;
}
static void *kd_cu_pointer(uint64_t p) { return (void *)(uintptr_t)p; }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// ncclCgo says this build can load NCCL.
const ncclCgo = true

// CUDA driver results this file tells apart.
const (
	cudaSuccess       = 0
	cudaErrorNotReady = 600 // CUDA_ERROR_NOT_READY: cuStreamQuery's "still running"
)

// ncclLib is an opened libnccl.
type ncclLib struct {
	l       *C.kd_nccl_lib
	path    string
	version int // NCCL_VERSION_CODE
}

var ncclLibs struct {
	sync.Mutex
	open map[string]*ncclLib // by the path it was opened as
}

// NCCLAvailable returns nil when NCCL's libnccl.so.2 loads (it does not
// look for a GPU), or an error that says where it looked and what to
// install. $KEDIFF_NCCL_LIB names the library explicitly.
func NCCLAvailable() error {
	if _, err := loadNCCL(); err != nil {
		return fmt.Errorf("dist: %w", err)
	}
	return nil
}

// loadNCCL opens the first of ncclCandidates that loads, once per path.
func loadNCCL() (*ncclLib, error) {
	exeDir := ""
	if exe, err := os.Executable(); err == nil {
		exeDir = filepath.Dir(exe)
	}
	var tried []string
	for _, path := range ncclCandidates(os.Getenv, exeDir) {
		l, err := openNCCL(path)
		if err == nil {
			return l, nil
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, path+":") { // dlerror names the file itself
			msg = path + ": " + msg
		}
		tried = append(tried, msg)
	}
	return nil, ncclMissing(tried)
}

func openNCCL(path string) (*ncclLib, error) {
	ncclLibs.Lock()
	defer ncclLibs.Unlock()
	if l, ok := ncclLibs.open[path]; ok {
		return l, nil
	}
	if strings.Contains(path, "/") {
		if _, err := os.Stat(path); err != nil {
			return nil, errors.New("not found")
		}
	}
	l := &ncclLib{l: (*C.kd_nccl_lib)(C.calloc(1, C.size_t(unsafe.Sizeof(C.kd_nccl_lib{})))), path: path}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if e := C.kd_nccl_open(l.l, cp); e != nil {
		err := fmt.Errorf("%s", C.GoString(e))
		if l.l.h != nil {
			C.dlclose(l.l.h)
		}
		C.free(unsafe.Pointer(l.l))
		return nil, err
	}
	var v C.int
	if r := C.kd_nccl_version(l.l, &v); r != 0 {
		return nil, fmt.Errorf("ncclGetVersion: %s", l.errorString(int(r), nil))
	}
	l.version = int(v)
	if ncclLibs.open == nil {
		ncclLibs.open = map[string]*ncclLib{}
	}
	ncclLibs.open[path] = l
	return l, nil
}

// errorString says what NCCL result r means, with NCCL's last message
// about comm where it has one.
func (l *ncclLib) errorString(r int, comm C.kd_nccl_comm) string {
	s := fmt.Sprintf("%s (ncclResult_t %d)", C.GoString(C.kd_nccl_error_string(l.l, C.int(r))), r)
	if m := C.kd_nccl_last_error(l.l, comm); m != nil && C.GoString(m) != "" {
		s += ": " + C.GoString(m)
	}
	return s
}

// The CUDA driver, opened and initialized once per process.
var cuDriver struct {
	once sync.Once
	l    *C.kd_cu_lib
	err  error
}

func loadCUDA() (*C.kd_cu_lib, error) {
	cuDriver.once.Do(func() {
		l := (*C.kd_cu_lib)(C.calloc(1, C.size_t(unsafe.Sizeof(C.kd_cu_lib{}))))
		if e := C.kd_cu_open(l); e != nil {
			cuDriver.err = fmt.Errorf("no NVIDIA driver (%s): NCCL needs a machine with an NVIDIA GPU and its driver", C.GoString(e))
			return
		}
		if r := C.kd_cu_init(l); r != cudaSuccess {
			cuDriver.err = fmt.Errorf("the NVIDIA driver found no usable GPU: cuInit: %s", cuString(l, r))
			return
		}
		cuDriver.l = l
	})
	return cuDriver.l, cuDriver.err
}

func cuString(l *C.kd_cu_lib, r C.int) string {
	return fmt.Sprintf("%s (CUresult %d)", C.GoString(C.kd_cu_error_string(l, r)), int(r))
}

// cuContexts holds each device's primary context, the one the CUDA runtime
// (kernels/cuda's, NCCL's) uses too. It is retained once and kept for the
// life of the process, as the runtime does.
var cuContexts struct {
	sync.Mutex
	ctx map[int]unsafe.Pointer
}

// useDevice makes device's primary context current on the calling thread,
// which must be locked to its goroutine.
func useDevice(l *C.kd_cu_lib, device int) error {
	cuContexts.Lock()
	defer cuContexts.Unlock()
	ctx, ok := cuContexts.ctx[device]
	if !ok {
		var n C.int
		if r := C.kd_cu_device_count(l, &n); r != cudaSuccess {
			return fmt.Errorf("counting GPUs: %s", cuString(l, r))
		}
		if device < 0 || device >= int(n) {
			return fmt.Errorf("GPU %d asked for, %d present", device, int(n))
		}
		if r := C.kd_cu_primary_ctx(l, C.int(device), &ctx); r != cudaSuccess {
			return fmt.Errorf("GPU %d: retaining its primary context: %s", device, cuString(l, r))
		}
		if cuContexts.ctx == nil {
			cuContexts.ctx = map[int]unsafe.Pointer{}
		}
		cuContexts.ctx[device] = ctx
	}
	if r := C.kd_cu_set_current(l, ctx); r != cudaSuccess {
		return fmt.Errorf("GPU %d: making its context current: %s", device, cuString(l, r))
	}
	return nil
}

// ncclComm is the Comm DialNCCL returns. Every NCCL and CUDA call runs on
// one goroutine locked to its OS thread (serve), where the device's
// context is current; the fields after the blank line are that
// goroutine's.
type ncclComm struct {
	rank, world, device int
	timeout             time.Duration
	pointer             func(addr uintptr, n int, bf16 bool) (uintptr, error)
	calls               chan func()
	done                chan struct{} // serve has returned
	seq                 int           // collectives started
	broken              error
	stuck               bool // a call is still running on serve's thread
	closed              bool

	lib       *ncclLib
	cu        *C.kd_cu_lib
	comm      C.kd_nccl_comm
	stream    C.uintptr_t
	ownStream bool
	scratch   C.uint64_t // 4 device bytes for Barrier
}

// DialNCCL joins the job described by info over NCCL on GPU device (its
// index among the GPUs this process sees; info.LocalRank where each
// process has its own GPU, as Info.Device says). NCCL's libnccl.so.2 and
// the driver's libcuda.so.1 are loaded at run time: building needs neither,
// and a machine without them gets an error saying what to install (see
// NCCLAvailable). boot is an already joined Comm of the same job (DialTCP's,
// DialMPI's, or Single() in a world of one): rank 0's ncclGetUniqueId
// travels through its Broadcast, and every rank learns through it whether
// every rank could load NCCL and select its GPU, so a rank that cannot
// makes every rank fail at once, naming it. boot is not closed and not used
// afterwards.
//
// The buffers given to the collectives are device memory (see
// NCCLOptions.DevicePointer for memory that a host address stands for);
// each collective runs in place and has finished when it returns.
// AllReduceMean is NCCL's ncclAvg (each value multiplied by 1/Size, then
// summed); AllReduceSumBF16 sums in bf16 as NCCL does, rounding after each
// addition, which equals the Comm contract's single rounding for two ranks
// and drifts from it with more. Every rank gets the same bits, but NCCL's
// reduction order depends on its algorithm, version and topology, not on
// rank order: the sums are not bit-identical to DialTCP's.
//
// A collective that has not finished within opts.Timeout, or that NCCL
// reports failed, is aborted (ncclCommAbort) and the Comm is broken. A
// call into NCCL that blocks (ncclCommInitRank waiting for a rank that
// never comes) returns an error after Timeout plus 30 seconds, leaving the
// thread blocked in it; Close then says so, and the process should exit.
func DialNCCL(info Info, boot Comm, device int, opts NCCLOptions) (Comm, error) {
	if err := checkNCCLArgs(info, boot); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	c := &ncclComm{
		rank: info.Rank, world: info.World, device: device, timeout: opts.Timeout, pointer: opts.DevicePointer,
		calls: make(chan func()), done: make(chan struct{}),
	}
	go c.serve()
	fail := func(err error) (Comm, error) {
		c.Close()
		return nil, err
	}
	var id [ncclIDBytes]byte
	err := c.call("loading NCCL and selecting the GPU", opts.Timeout, func() error { return c.setup(opts.Stream, &id) })
	if err = ncclAgree(boot, c.rank, c.world, "load NCCL and select their GPU", err); err != nil {
		return fail(err)
	}
	w := packNCCLID(id)
	if err := boot.Broadcast(w[:], 0); err != nil {
		return fail(fmt.Errorf("dist: rank %d: NCCL: receiving rank 0's unique id: %w", c.rank, err))
	}
	id = unpackNCCLID(w)
	err = c.call("ncclCommInitRank", opts.Timeout, func() error { return c.join(id) })
	if err = ncclAgree(boot, c.rank, c.world, "join the NCCL communicator", err); err != nil {
		return fail(err)
	}
	return c, nil
}

// serve runs the calls on one OS thread. It never unlocks it: the thread
// carries the device's current context and ends with the goroutine.
func (c *ncclComm) serve() {
	runtime.LockOSThread()
	defer close(c.done)
	for f := range c.calls {
		f()
	}
}

// call runs f on serve's thread and waits for it up to limit plus
// ncclGrace; past that it gives up on the thread (stuck) and says so.
func (c *ncclComm) call(what string, limit time.Duration, f func() error) error {
	if c.stuck {
		return fmt.Errorf("dist: rank %d: NCCL: an earlier call is still blocked in NCCL or CUDA", c.rank)
	}
	res := make(chan error, 1)
	c.calls <- func() { res <- f() }
	t := time.NewTimer(limit + ncclGrace)
	defer t.Stop()
	select {
	case err := <-res:
		return err
	case <-t.C:
		c.stuck = true
		return fmt.Errorf("dist: rank %d: NCCL: %s on GPU %d did not return within %v (did every rank get this far? see their logs); its thread stays blocked, so end the process", c.rank, what, c.device, limit+ncclGrace)
	}
}

// setup loads NCCL and the driver, selects the GPU, makes the stream and
// Barrier's scratch, and on rank 0 makes the unique id. On serve's thread.
func (c *ncclComm) setup(stream uintptr, id *[ncclIDBytes]byte) error {
	failf := func(format string, a ...any) error {
		return fmt.Errorf("dist: rank %d: NCCL: "+format, append([]any{c.rank}, a...)...)
	}
	if c.device < 0 {
		return failf("GPU %d is not a device index", c.device)
	}
	lib, err := loadNCCL()
	if err != nil {
		return fmt.Errorf("dist: rank %d: %w", c.rank, err)
	}
	if lib.version < ncclMinVersion {
		return failf("%s is NCCL %s; kediff needs %s or later (for ncclAvg and bf16): install a newer one (pip install nvidia-nccl-cu12)",
			lib.path, ncclVersionString(lib.version), ncclVersionString(ncclMinVersion))
	}
	c.lib = lib
	if c.cu, err = loadCUDA(); err != nil {
		return failf("%v", err)
	}
	if err := useDevice(c.cu, c.device); err != nil {
		return failf("%v", err)
	}
	if stream != 0 {
		c.stream = C.uintptr_t(stream)
	} else {
		var s C.uintptr_t
		if r := C.kd_cu_stream_create(c.cu, &s); r != cudaSuccess {
			return failf("GPU %d: creating a stream: %s", c.device, cuString(c.cu, r))
		}
		c.stream, c.ownStream = s, true
	}
	var scratch C.uint64_t
	if r := C.kd_cu_alloc(c.cu, 4, &scratch); r != cudaSuccess {
		return failf("GPU %d: allocating 4 bytes: %s", c.device, cuString(c.cu, r))
	}
	c.scratch = scratch
	if c.rank == 0 {
		if r := C.kd_nccl_unique_id(lib.l, unsafe.Pointer(&id[0])); r != 0 {
			return failf("ncclGetUniqueId (%s): %s", lib.path, lib.errorString(int(r), nil))
		}
	}
	return nil
}

// join is ncclCommInitRank. On serve's thread.
func (c *ncclComm) join(id [ncclIDBytes]byte) error {
	var comm C.kd_nccl_comm
	if r := C.kd_nccl_init_rank(c.lib.l, &comm, C.int(c.world), unsafe.Pointer(&id[0]), C.int(c.rank)); r != 0 {
		return fmt.Errorf("dist: rank %d: NCCL: ncclCommInitRank on GPU %d (rank %d of %d, NCCL %s): %s",
			c.rank, c.device, c.rank, c.world, ncclVersionString(c.lib.version), c.lib.errorString(int(r), nil))
	}
	c.comm = comm
	return nil
}

func (c *ncclComm) Rank() int { return c.rank }
func (c *ncclComm) Size() int { return c.world }

func (c *ncclComm) AllReduceSum(buf []float32) error {
	return c.collective(opSum, addrOf(buf), len(buf), false, 0)
}

func (c *ncclComm) AllReduceMean(buf []float32) error {
	return c.collective(opMean, addrOf(buf), len(buf), false, 0)
}

func (c *ncclComm) AllReduceSumBF16(buf []uint16) error {
	return c.collective(opSum, addrOf(buf), len(buf), true, 0)
}

func (c *ncclComm) Broadcast(buf []float32, root int) error {
	if err := checkRoot(root, c.world); err != nil {
		return err
	}
	return c.collective(opBroadcast, addrOf(buf), len(buf), false, root)
}

func (c *ncclComm) Barrier() error { return c.collective(opBarrier, 0, 0, false, 0) }

// collective runs one collective on serve's thread: in place on n values
// at addr (device memory, or what DevicePointer maps it to).
func (c *ncclComm) collective(o op, addr uintptr, n int, bf16 bool, root int) error {
	what := o.String()
	if bf16 {
		what = "bf16 " + what
	}
	if c.closed {
		return fmt.Errorf("dist: rank %d: %s after Close", c.rank, what)
	}
	if c.broken != nil {
		return c.broken
	}
	if o != opBarrier && n == 0 {
		return nil // nothing to move, on every rank
	}
	c.seq++
	name := fmt.Sprintf("%s %d", what, c.seq)
	if c.pointer != nil && o != opBarrier {
		p, err := c.pointer(addr, n, bf16)
		if err != nil {
			c.broken = fmt.Errorf("dist: rank %d: NCCL %s: %w", c.rank, name, err)
			return c.broken
		}
		addr = p
	}
	deadline := time.Now().Add(c.timeout)
	err := c.call("NCCL "+name, c.timeout, func() error { return c.run(o, name, addr, n, bf16, root, deadline) })
	if err != nil {
		c.broken = err
	}
	return err
}

// run queues the collective on the stream and waits for it. On serve's
// thread.
func (c *ncclComm) run(o op, name string, addr uintptr, n int, bf16 bool, root int, deadline time.Time) error {
	dt, size := ncclFloat32, 4
	if bf16 {
		dt, size = ncclBfloat16, 2
	}
	buf := C.uint64_t(addr)
	if o == opBarrier {
		buf, n = c.scratch, 1
	}
	if err := c.checkDevice(buf, n*size); err != nil {
		return fmt.Errorf("dist: rank %d: NCCL %s: %w", c.rank, name, err)
	}
	if c.ownStream {
		// Kernels may still be writing buf on a stream of their own.
		if r := C.kd_cu_synchronize(c.cu); r != cudaSuccess {
			return fmt.Errorf("dist: rank %d: NCCL %s: the GPU's work queued before it failed: %s", c.rank, name, cuString(c.cu, r))
		}
	}
	var r C.int
	switch o {
	case opSum, opBarrier:
		r = C.kd_nccl_all_reduce(c.lib.l, buf, C.size_t(n), C.int(dt), ncclSum, c.comm, c.stream)
	case opMean:
		r = C.kd_nccl_all_reduce(c.lib.l, buf, C.size_t(n), C.int(dt), ncclAvg, c.comm, c.stream)
	case opBroadcast:
		r = C.kd_nccl_broadcast(c.lib.l, buf, C.size_t(n), C.int(dt), C.int(root), c.comm, c.stream)
	default:
		return fmt.Errorf("dist: rank %d: NCCL has no %s", c.rank, name)
	}
	if r != 0 {
		return fmt.Errorf("dist: rank %d: NCCL %s (%d values): %s", c.rank, name, n, c.lib.errorString(int(r), c.comm))
	}
	err := ncclAwait(deadline, c.streamDone, c.asyncError, time.Now, time.Sleep)
	if err == nil {
		return nil
	}
	C.kd_nccl_abort(c.lib.l, c.comm)
	c.comm = nil
	if err == errNCCLTimeout {
		return fmt.Errorf("dist: rank %d: NCCL %s (%d values) did not finish within %v (is another rank stuck, or slower than NCCLOptions.Timeout? see its log); the communicator was aborted",
			c.rank, name, n, c.timeout)
	}
	return fmt.Errorf("dist: rank %d: NCCL %s (%d values) failed: %w (did a rank die? see its log); the communicator was aborted", c.rank, name, n, err)
}

// checkDevice checks that bytes at p lie in one device allocation.
func (c *ncclComm) checkDevice(p C.uint64_t, bytes int) error {
	var base, size C.uint64_t
	if r := C.kd_cu_range(c.cu, p, &base, &size); r != cudaSuccess {
		return fmt.Errorf("the buffer at %#x is not device memory (%s): give device buffers, or set NCCLOptions.DevicePointer to map host-side views such as kernels/cuda's", uint64(p), cuString(c.cu, r))
	}
	if end := uint64(p) + uint64(bytes); end > uint64(base)+uint64(size) {
		return fmt.Errorf("the buffer at %#x (%d bytes) runs %d bytes past the end of its device allocation", uint64(p), bytes, end-uint64(base)-uint64(size))
	}
	return nil
}

func (c *ncclComm) streamDone() (bool, error) {
	switch r := C.kd_cu_stream_query(c.cu, c.stream); r {
	case cudaSuccess:
		return true, nil
	case cudaErrorNotReady:
		return false, nil
	default:
		return false, fmt.Errorf("the stream failed: %s", cuString(c.cu, r))
	}
}

func (c *ncclComm) asyncError() error {
	var e C.int
	if r := C.kd_nccl_async_error(c.lib.l, c.comm, &e); r != 0 {
		return fmt.Errorf("ncclCommGetAsyncError: %s", c.lib.errorString(int(r), c.comm))
	}
	if e != 0 && e != ncclInProgress {
		return fmt.Errorf("%s", c.lib.errorString(int(e), c.comm))
	}
	return nil
}

// Close frees the communicator (ncclCommDestroy, or ncclCommAbort when the
// Comm is broken), the stream and the scratch, and ends the thread. A
// second Close does nothing.
func (c *ncclComm) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.stuck {
		close(c.calls) // serve ends once the blocked call returns, if ever
		return fmt.Errorf("dist: rank %d: NCCL: a call is still blocked in NCCL or CUDA, so the communicator cannot be freed; end the process", c.rank)
	}
	abort := c.broken != nil
	err := c.call("ncclCommDestroy", c.timeout, func() error { return c.teardown(abort) })
	close(c.calls)
	if !c.stuck {
		<-c.done
	}
	return err
}

// teardown frees what setup and join made. On serve's thread.
func (c *ncclComm) teardown(abort bool) error {
	var err error
	if c.comm != nil {
		var r C.int
		name := "ncclCommDestroy"
		if abort {
			name, r = "ncclCommAbort", C.kd_nccl_abort(c.lib.l, c.comm)
		} else {
			r = C.kd_nccl_destroy(c.lib.l, c.comm)
		}
		if r != 0 {
			err = fmt.Errorf("dist: rank %d: NCCL: %s: %s", c.rank, name, c.lib.errorString(int(r), nil))
		}
		c.comm = nil
	}
	if c.scratch != 0 {
		C.kd_cu_free(c.cu, c.scratch)
		c.scratch = 0
	}
	if c.ownStream && c.stream != 0 {
		C.kd_cu_stream_destroy(c.cu, c.stream)
		c.stream = 0
	}
	return err
}

// The tests' access to NCCL and device memory without a Comm.

// ncclLibraryVersion is the NCCL_VERSION_CODE of the library
// NCCLAvailable finds, and its path.
func ncclLibraryVersion() (int, string, error) {
	l, err := loadNCCL()
	if err != nil {
		return 0, "", err
	}
	return l.version, l.path, nil
}

// ncclNewUniqueID is ncclGetUniqueId (it needs no GPU).
func ncclNewUniqueID() ([ncclIDBytes]byte, error) {
	var id [ncclIDBytes]byte
	l, err := loadNCCL()
	if err != nil {
		return id, err
	}
	if r := C.kd_nccl_unique_id(l.l, unsafe.Pointer(&id[0])); r != 0 {
		return id, fmt.Errorf("ncclGetUniqueId: %s", l.errorString(int(r), nil))
	}
	return id, nil
}

// ncclDeviceCount is how many GPUs the driver sees.
func ncclDeviceCount() (int, error) {
	l, err := loadCUDA()
	if err != nil {
		return 0, err
	}
	var n C.int
	if r := C.kd_cu_device_count(l, &n); r != cudaSuccess {
		return 0, fmt.Errorf("cuDeviceGetCount: %s", cuString(l, r))
	}
	return int(n), nil
}

// onDevice runs f on a locked thread with device's context current.
func onDevice(device int, f func(l *C.kd_cu_lib) C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l, err := loadCUDA()
	if err != nil {
		return err
	}
	if err := useDevice(l, device); err != nil {
		return err
	}
	if r := f(l); r != cudaSuccess {
		return fmt.Errorf("cuda: %s", cuString(l, r))
	}
	return nil
}

// ncclDeviceAlloc allocates bytes of device memory on device.
func ncclDeviceAlloc(device, bytes int) (unsafe.Pointer, error) {
	var p C.uint64_t
	err := onDevice(device, func(l *C.kd_cu_lib) C.int { return C.kd_cu_alloc(l, C.size_t(bytes), &p) })
	return C.kd_cu_pointer(p), err
}

// ncclDeviceCopy copies bytes from host to device (toDevice) or back.
func ncclDeviceCopy(device int, dst, src unsafe.Pointer, bytes int, toDevice bool) error {
	return onDevice(device, func(l *C.kd_cu_lib) C.int {
		if toDevice {
			return C.kd_cu_htod(l, C.uint64_t(uintptr(dst)), src, C.size_t(bytes))
		}
		return C.kd_cu_dtoh(l, dst, C.uint64_t(uintptr(src)), C.size_t(bytes))
	})
}

// ncclDeviceFree frees ncclDeviceAlloc's memory.
func ncclDeviceFree(device int, p unsafe.Pointer) error {
	return onDevice(device, func(l *C.kd_cu_lib) C.int { return C.kd_cu_free(l, C.uint64_t(uintptr(p))) })
}
