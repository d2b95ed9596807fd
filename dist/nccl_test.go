package dist

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// ncclTestIDs are unique ids whose bytes take every value at every
// position, whose words are NaNs (quiet and signaling, either sign, with
// payloads), infinities, negative zero and subnormals, and random ones.
func ncclTestIDs() [][ncclIDBytes]byte {
	var ids [][ncclIDBytes]byte
	for k := range 256 {
		var id [ncclIDBytes]byte
		for i := range id {
			id[i] = byte(k + i)
		}
		ids = append(ids, id)
	}
	words := []uint32{
		0x7fc00000, 0x7f800001, 0x7fbfffff, 0x7fc00001, 0xffc00000, 0xff800001, 0xffffffff, 0x7fffffff,
		0x80000000, 0x00000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x3f800000, 0x7f7fffff,
	}
	for shift := range 2 {
		var id [ncclIDBytes]byte
		for i := range ncclIDBytes / 4 {
			binary.LittleEndian.PutUint32(id[4*i:], words[(i+shift)%len(words)])
		}
		ids = append(ids, id)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		var id [ncclIDBytes]byte
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		ids = append(ids, id)
	}
	return ids
}

func TestNCCLIDPackingRoundTrips(t *testing.T) {
	for _, id := range ncclTestIDs() {
		w := packNCCLID(id)
		if got := unpackNCCLID(w); got != id {
			t.Fatalf("unpack(pack(%x)) = %x", id, got)
		}
		for i, v := range w {
			if b := math.Float32bits(v); b != binary.LittleEndian.Uint32(id[4*i:]) {
				t.Fatalf("word %d of %x is %#08x, want the bytes' own bits", i, id, b)
			}
		}
	}
}

// The unique id must reach every rank bit for bit through a real Comm's
// Broadcast, NaN payloads and all, from either root.
func TestNCCLIDCrossesTCPBroadcastExactly(t *testing.T) {
	comms := mustJoin(t, 2, TCPOptions{Timeout: 30 * time.Second})
	ids := ncclTestIDs()
	for root := range 2 {
		got := make([][][ncclIDBytes]byte, 2)
		errs := each(comms, func(r int, c Comm) error {
			for _, id := range ids {
				var w [ncclIDBytes / 4]float32
				if r == root {
					w = packNCCLID(id)
				} else {
					for i := range w {
						w[i] = float32(i) + 0.5 // what is there before must not matter
					}
				}
				if err := c.Broadcast(w[:], root); err != nil {
					return err
				}
				got[r] = append(got[r], unpackNCCLID(w))
			}
			return nil
		})
		for r, err := range errs {
			if err != nil {
				t.Fatalf("root %d, rank %d: %v", root, r, err)
			}
		}
		for r := range 2 {
			for i, id := range ids {
				if got[r][i] != id {
					t.Fatalf("root %d: rank %d received id %d as %x, want %x", root, r, i, got[r][i], id)
				}
			}
		}
	}
}

func TestNCCLAgreeNamesTheRanksThatFailed(t *testing.T) {
	comms := mustJoin(t, 3, TCPOptions{Timeout: 30 * time.Second})
	local := errors.New("dist: rank 2: NCCL: GPU 7 asked for, 1 present")
	errs := each(comms, func(r int, c Comm) error {
		var err error
		if r == 2 {
			err = local
		}
		return ncclAgree(c, r, 3, "load NCCL and select their GPU", err)
	})
	for r := range 2 {
		if errs[r] == nil || !strings.Contains(errs[r].Error(), "ranks [2] could not load NCCL and select their GPU") {
			t.Errorf("rank %d: %v, want it to name rank 2", r, errs[r])
		}
	}
	if errs[2] != local {
		t.Errorf("rank 2: %v, want its own error", errs[2])
	}
	// and when every rank managed, every rank goes on
	for r, err := range each(comms, func(r int, c Comm) error { return ncclAgree(c, r, 3, "join", nil) }) {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
	if err := ncclAgree(Single(), 0, 1, "join", nil); err != nil {
		t.Errorf("world of one: %v", err)
	}
}

func TestNCCLAwait(t *testing.T) {
	boom := errors.New("ncclRemoteError")
	cudaErr := errors.New("the stream failed")
	for _, tc := range []struct {
		name       string
		doneAt     int // poll at which done reports true; 0: never
		failAt     int // poll at which failed reports boom; 0: never
		cudaAt     int // poll at which done reports cudaErr; 0: never
		late       bool
		want       error
		wantPolls  int
		wantSleeps []time.Duration
	}{
		{name: "finished_at_once", doneAt: 1, want: nil, wantPolls: 1},
		{name: "finished_after_polls", doneAt: 5, want: nil, wantPolls: 5,
			wantSleeps: []time.Duration{10 * time.Microsecond, 20 * time.Microsecond, 40 * time.Microsecond, 80 * time.Microsecond}},
		{name: "nccl_error", failAt: 3, want: boom, wantPolls: 3,
			wantSleeps: []time.Duration{10 * time.Microsecond, 20 * time.Microsecond}},
		{name: "cuda_error", cudaAt: 2, want: cudaErr, wantPolls: 2, wantSleeps: []time.Duration{10 * time.Microsecond}},
		{name: "finished_work_beats_the_deadline", doneAt: 1, late: true, want: nil, wantPolls: 1},
		{name: "deadline", late: true, want: errNCCLTimeout, wantPolls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			clock := start
			deadline := start.Add(time.Hour)
			if tc.late {
				deadline = start
			}
			polls := 0
			var sleeps []time.Duration
			err := ncclAwait(deadline,
				func() (bool, error) {
					polls++
					if polls == tc.cudaAt {
						return false, cudaErr
					}
					return polls == tc.doneAt, nil
				},
				func() error {
					if polls == tc.failAt {
						return boom
					}
					return nil
				},
				func() time.Time { return clock },
				func(d time.Duration) { sleeps = append(sleeps, d); clock = clock.Add(d) })
			if err != tc.want || polls != tc.wantPolls || len(sleeps) != len(tc.wantSleeps) {
				t.Fatalf("err %v after %d polls and sleeps %v; want %v after %d polls and sleeps %v", err, polls, sleeps, tc.want, tc.wantPolls, tc.wantSleeps)
			}
			for i := range sleeps {
				if sleeps[i] != tc.wantSleeps[i] {
					t.Fatalf("sleeps %v, want %v", sleeps, tc.wantSleeps)
				}
			}
		})
	}
	t.Run("sleeps_grow_to_1ms_until_the_deadline", func(t *testing.T) {
		clock := time.Unix(0, 0)
		var sleeps []time.Duration
		err := ncclAwait(clock.Add(50*time.Millisecond),
			func() (bool, error) { return false, nil }, func() error { return nil },
			func() time.Time { return clock },
			func(d time.Duration) { sleeps = append(sleeps, d); clock = clock.Add(d) })
		if err != errNCCLTimeout {
			t.Fatalf("err %v, want the timeout", err)
		}
		if last := sleeps[len(sleeps)-1]; last != time.Millisecond || clock.Sub(time.Unix(0, 0)) > 51*time.Millisecond {
			t.Fatalf("last sleep %v, waited %v: want 1ms steps ending at the 50ms deadline", last, clock.Sub(time.Unix(0, 0)))
		}
	})
}

func TestNCCLVersionString(t *testing.T) {
	for code, want := range map[int]string{22105: "2.21.5", 21000: "2.10.0", 23203: "2.32.3", 2804: "2.8.4"} {
		if got := ncclVersionString(code); got != want {
			t.Errorf("ncclVersionString(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestNCCLCandidates(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	got := ncclCandidates(env(map[string]string{"KEDIFF_CUDA_LIBS": "/a:/b/lib:"}), "/opt/kediff")
	want := []string{"/opt/kediff/libnccl.so.2", "/a/libnccl.so.2", "/b/lib/libnccl.so.2", "libnccl.so.2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("candidates %q, want %q", got, want)
	}
	got = ncclCandidates(env(map[string]string{"KEDIFF_NCCL_LIB": "/x/libnccl.so.2", "KEDIFF_CUDA_LIBS": "/a"}), "/opt/kediff")
	if len(got) != 1 || got[0] != "/x/libnccl.so.2" {
		t.Errorf("with KEDIFF_NCCL_LIB set: candidates %q, want only it", got)
	}
}

func TestDialNCCLChecksItsArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		info Info
		boot Comm
		want string
	}{
		{"rank_outside_the_world", Info{Rank: 2, World: 2}, Single(), "not a place in a job"},
		{"no_bootstrap", Info{World: 1}, nil, "needs a bootstrap Comm"},
		{"bootstrap_of_another_shape", Info{Rank: 1, World: 2}, Single(), "was given a bootstrap Comm of rank 0 of 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DialNCCL(tc.info, tc.boot, 0, NCCLOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestNCCLAvailableSaysWhatToInstall(t *testing.T) {
	if !ncclCgo {
		if err := NCCLAvailable(); err == nil || !strings.Contains(err.Error(), "without cgo") {
			t.Fatalf("without cgo: %v", err)
		}
		return
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing", "libnccl.so.2")
	t.Setenv(ncclLibEnv, missing)
	err := NCCLAvailable()
	if err == nil {
		t.Fatal("NCCLAvailable found a library that is not there")
	}
	for _, want := range []string{missing + ": not found", "pip install nvidia-nccl-cu12", "libnccl2", "non-free", "KEDIFF_NCCL_LIB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// a file that is not a library: the loader's reason is in the message
	junk := filepath.Join(dir, "libnccl.so.2")
	if err := os.WriteFile(junk, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ncclLibEnv, junk)
	if err := NCCLAvailable(); err == nil || !strings.Contains(err.Error(), junk+": ") || strings.Contains(err.Error(), junk+": not found") {
		t.Errorf("for a file that is no library: %v", err)
	}
}

// needNCCL makes NCCLAvailable find libnccl.so.2 for the test: as it finds
// it anyway, else from the nvidia-nccl-cu12 wheel in the repository's
// .cache/venv (.cache/venv/bin/pip install nvidia-nccl-cu12); it skips the
// test where there is none.
func needNCCL(t *testing.T) {
	t.Helper()
	if !ncclCgo {
		t.Skip("built without cgo: no NCCL")
	}
	if os.Getenv(ncclLibEnv) == "" && NCCLAvailable() != nil {
		m, _ := filepath.Glob("../.cache/venv/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.2")
		if len(m) > 0 {
			p, err := filepath.Abs(m[0])
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv(ncclLibEnv, p)
		}
	}
	if err := NCCLAvailable(); err != nil {
		t.Skipf("no NCCL here: %v", err)
	}
}

// needGPUs skips the test unless NCCL loads and the driver sees n GPUs.
func needGPUs(t *testing.T, n int) {
	t.Helper()
	needNCCL(t)
	have, err := ncclDeviceCount()
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	if have < n {
		t.Skipf("needs %d CUDA devices, the driver sees %d", n, have)
	}
}

func TestNCCLLibraryLoads(t *testing.T) {
	needNCCL(t)
	v, path, err := ncclLibraryVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NCCL %s from %s", ncclVersionString(v), path)
	if v < ncclMinVersion || v >= 30000 {
		t.Fatalf("ncclGetVersion says %d (%s): want 2.10 to 2.x", v, ncclVersionString(v))
	}
	// ncclGetUniqueId needs no GPU: it opens the bootstrap root's socket.
	a, err := ncclNewUniqueID()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ncclNewUniqueID()
	if err != nil {
		t.Fatal(err)
	}
	if a == ([ncclIDBytes]byte{}) || a == b {
		t.Fatalf("unique ids %x and %x: want two different, non-zero ids", a, b)
	}
}

// A rank that cannot set up makes every rank fail at once, naming it,
// rather than leaving the others in NCCL: rank 1 asks for GPU -1.
func TestDialNCCLFailsEveryRankTogether(t *testing.T) {
	if !ncclCgo {
		t.Skip("built without cgo")
	}
	comms := mustJoin(t, 2, TCPOptions{Timeout: 30 * time.Second})
	start := time.Now()
	errs := each(comms, func(r int, b Comm) error {
		device := 0
		if r == 1 {
			device = -1
		}
		c, err := DialNCCL(Info{Rank: r, World: 2}, b, device, NCCLOptions{Timeout: 20 * time.Second})
		if c != nil {
			c.Close()
			return errors.New("DialNCCL succeeded")
		}
		return err
	})
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "GPU -1 is not a device index") {
		t.Errorf("rank 1: %v, want it to refuse GPU -1", errs[1])
	}
	if errs[0] == nil {
		t.Error("rank 0 succeeded without rank 1")
	} else {
		t.Logf("rank 0: %v", errs[0]) // its own failure (no NCCL, no GPU here), or rank 1's named
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v: the ranks waited for each other", d)
	}
}

func TestDialNCCLWithoutAGPUSaysSo(t *testing.T) {
	if !ncclCgo {
		t.Skip("built without cgo")
	}
	if n, err := ncclDeviceCount(); err == nil && n > 0 {
		t.Skipf("the driver sees %d GPUs", n)
	}
	c, err := DialNCCL(Info{World: 1}, Single(), 0, NCCLOptions{Timeout: 20 * time.Second})
	if c != nil {
		c.Close()
		t.Fatal("DialNCCL succeeded without a GPU")
	}
	if err == nil || !strings.Contains(err.Error(), "NCCL") ||
		!(strings.Contains(err.Error(), "libnccl.so.2") || strings.Contains(err.Error(), "libcuda.so.1") || strings.Contains(err.Error(), "GPU")) {
		t.Fatalf("err %v: want it to say what is missing", err)
	}
	t.Log(err)
}

// toDevice copies host into new device memory on GPU dev, freed when the
// test ends; the slice's data pointer is the device address.
func toDevice[T any](t *testing.T, dev int, host []T) []T {
	t.Helper()
	size := int(unsafe.Sizeof(host[0])) * len(host)
	p, err := ncclDeviceAlloc(dev, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ncclDeviceFree(dev, p) })
	if err := ncclDeviceCopy(dev, p, unsafe.Pointer(&host[0]), size, true); err != nil {
		t.Fatal(err)
	}
	return unsafe.Slice((*T)(p), len(host))
}

func fromDevice[T any](t *testing.T, dev int, d []T) []T {
	t.Helper()
	host := make([]T, len(d))
	if err := ncclDeviceCopy(dev, unsafe.Pointer(&host[0]), unsafe.Pointer(&d[0]), int(unsafe.Sizeof(host[0]))*len(d), false); err != nil {
		t.Fatal(err)
	}
	return host
}

func sameUint16(a, b []uint16) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestNCCLWorldOfOneOnGPU(t *testing.T) {
	needGPUs(t, 1)
	const n = 1<<20 + 3
	x := input(0, n)
	xb := make([]uint16, n)
	Float32ToBF16(xb, x)
	d, db := toDevice(t, 0, x), toDevice(t, 0, xb)

	c, err := DialNCCL(Info{World: 1}, Single(), 0, NCCLOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, step := range []struct {
		name string
		f    func() error
	}{
		{"AllReduceSum", func() error { return c.AllReduceSum(d) }},
		{"AllReduceMean", func() error { return c.AllReduceMean(d) }},
		{"AllReduceSum of a slice inside", func() error { return c.AllReduceSum(d[5:1000]) }},
		{"AllReduceSum of nothing", func() error { return c.AllReduceSum(d[:0]) }},
		{"AllReduceSumBF16", func() error { return c.AllReduceSumBF16(db) }},
		{"Broadcast", func() error { return c.Broadcast(d, 0) }},
		{"Barrier", c.Barrier},
	} {
		if err := step.f(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	if i := sameBits(fromDevice(t, 0, d), x); i >= 0 {
		t.Fatalf("a world of one changed value %d", i)
	}
	if i := sameUint16(fromDevice(t, 0, db), xb); i >= 0 {
		t.Fatalf("a world of one changed bf16 value %d", i)
	}
	if err := c.Broadcast(d, 1); err == nil || !strings.Contains(err.Error(), "outside the world") {
		t.Fatalf("Broadcast from root 1 of 1: %v", err)
	}
	if err := c.Barrier(); err != nil {
		t.Fatalf("a bad root broke the Comm: %v", err)
	}
	over := unsafe.Slice(&d[0], 2*n) // past any rounding of the allocation's size
	if err := c.AllReduceSum(over); err == nil || !strings.Contains(err.Error(), "past the end of its device allocation") {
		t.Fatalf("a buffer longer than its allocation: %v", err)
	}
	if err := c.Barrier(); err == nil {
		t.Fatal("the Comm still works after an error")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close of a broken Comm: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Barrier(); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Fatalf("Barrier after Close: %v", err)
	}

	// A host-side view (as kernels/cuda's buffers are) works through
	// DevicePointer, and without a mapping it is refused before NCCL.
	view := make([]float32, n)
	c2, err := DialNCCL(Info{World: 1}, Single(), 0, NCCLOptions{Timeout: time.Minute,
		DevicePointer: func(addr uintptr, m int, bf16 bool) (uintptr, error) {
			if addr == addrOf(view) && m <= n && !bf16 {
				return addrOf(d), nil
			}
			return addr, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.AllReduceSum(view); err != nil {
		t.Fatalf("through DevicePointer: %v", err)
	}
	if view[0] != 0 || view[n-1] != 0 {
		t.Fatal("NCCL wrote the host-side view")
	}
	if err := c2.AllReduceSum(make([]float32, 16)); err == nil || !strings.Contains(err.Error(), "is not device memory") {
		t.Fatalf("host memory: %v", err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
}

// dialNCCLPair joins two ranks over TCP, then over NCCL on GPUs 0 and 1.
func dialNCCLPair(t *testing.T, timeout time.Duration) []Comm {
	t.Helper()
	boot := mustJoin(t, 2, TCPOptions{Timeout: time.Minute})
	comms := make([]Comm, 2)
	for r, err := range each(boot, func(r int, b Comm) error {
		var err error
		comms[r], err = DialNCCL(Info{Rank: r, World: 2}, b, r, NCCLOptions{Timeout: timeout})
		return err
	}) {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	t.Cleanup(func() { closeAll(comms) })
	return comms
}

func TestNCCLTwoGPUs(t *testing.T) {
	needGPUs(t, 2)
	const n = 1<<20 + 3
	comms := dialNCCLPair(t, time.Minute)
	var d, dm, dc [2][]float32
	var bf [2][]uint16
	for r := range 2 {
		d[r], dm[r], dc[r] = toDevice(t, r, input(r, n)), toDevice(t, r, input(r, n)), toDevice(t, r, input(r, n))
		h := make([]uint16, n)
		Float32ToBF16(h, input(r, n))
		bf[r] = toDevice(t, r, h)
	}
	for r, err := range each(comms, func(r int, c Comm) error {
		for _, f := range []func() error{
			func() error { return c.AllReduceSum(d[r]) },
			func() error { return c.AllReduceMean(dm[r]) },
			func() error { return c.AllReduceSumBF16(bf[r]) },
			func() error { return c.Broadcast(dc[r], 1) },
			c.Barrier,
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}) {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	// With two ranks each sum is one addition, so NCCL's order cannot
	// matter, and x/2 + y/2 is (x + y)/2 away from subnormals.
	sum, mean, root := wantSum(2, n, false), wantSum(2, n, true), input(1, n)
	a, b := make([]uint16, n), make([]uint16, n)
	Float32ToBF16(a, input(0, n))
	Float32ToBF16(b, input(1, n))
	wide := make([]float32, n)
	for i := range wide {
		wide[i] = math.Float32frombits(uint32(a[i])<<16) + math.Float32frombits(uint32(b[i])<<16)
	}
	sumBF := make([]uint16, n)
	Float32ToBF16(sumBF, wide)
	for r := range 2 {
		for _, chk := range []struct {
			name      string
			got, want []float32
		}{{"sum", fromDevice(t, r, d[r]), sum}, {"mean", fromDevice(t, r, dm[r]), mean}, {"broadcast", fromDevice(t, r, dc[r]), root}} {
			if i := sameBits(chk.got, chk.want); i >= 0 {
				t.Errorf("rank %d: %s differs at %d: %g, want %g", r, chk.name, i, chk.got[i], chk.want[i])
			}
		}
		if i := sameUint16(fromDevice(t, r, bf[r]), sumBF); i >= 0 {
			t.Errorf("rank %d: bf16 sum differs at %d", r, i)
		}
	}
}

func TestNCCLStuckRankTimesOut(t *testing.T) {
	needGPUs(t, 2)
	comms := dialNCCLPair(t, 3*time.Second)
	bufs := [][]float32{toDevice(t, 0, input(0, 1024)), toDevice(t, 1, input(1, 1024))}
	// Once together, so that NCCL has connected the ranks (it may do so
	// lazily, inside the first collective's call).
	for r, err := range each(comms, func(r int, c Comm) error { return c.AllReduceSum(bufs[r]) }) {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	start := time.Now()
	err := comms[0].AllReduceSum(bufs[0]) // rank 1 never comes
	if err == nil || !strings.Contains(err.Error(), "rank 0: NCCL all-reduce 2 (1024 values) did not finish within 3s") {
		t.Fatalf("err %v, want a timeout naming rank 0 and the collective", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the timeout took %v", d)
	}
	if err2 := comms[0].Barrier(); err2 == nil {
		t.Error("the Comm still works after a timeout")
	}
}
