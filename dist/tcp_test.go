package dist

import (
	"context"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// listen binds rank 0's listener on a free loopback port.
func listen(t testing.TB) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// join starts world ranks as goroutines and returns each rank's Comm and
// rendezvous error. opts(r) gives rank r's options.
func join(t testing.TB, world int, opts func(r int) TCPOptions) ([]Comm, []error) {
	t.Helper()
	ln, port := listen(t)
	comms, errs := make([]Comm, world), make([]error, world)
	var g errgroup.Group
	for r := range world {
		o := opts(r)
		if r == 0 {
			o.Listener = ln
		}
		g.Go(func() error {
			info := Info{Rank: r, World: world, MasterAddr: "127.0.0.1", MasterPort: port}
			comms[r], errs[r] = DialTCP(context.Background(), info, o)
			return nil
		})
	}
	g.Wait()
	if world > 1 && errs[0] == nil {
		// Only rank 0 owns the listener; it must be closed after the rendezvous.
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Error("rank 0's listener still accepts after the rendezvous")
		}
	}
	return comms, errs
}

func mustJoin(t *testing.T, world int, o TCPOptions) []Comm {
	t.Helper()
	comms, errs := join(t, world, func(int) TCPOptions { return o })
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	t.Cleanup(func() { closeAll(comms) })
	return comms
}

func closeAll(comms []Comm) {
	var g errgroup.Group
	for _, c := range comms {
		if c != nil {
			g.Go(c.Close)
		}
	}
	g.Wait()
}

// each runs f on every rank at once and returns the errors by rank.
func each(comms []Comm, f func(r int, c Comm) error) []error {
	errs := make([]error, len(comms))
	var g errgroup.Group
	for r, c := range comms {
		g.Go(func() error { errs[r] = f(r, c); return nil })
	}
	g.Wait()
	return errs
}

// input is rank r's buffer: values whose float32 sums depend on the order.
func input(r, n int) []float32 {
	b := make([]float32, n)
	for i := range b {
		b[i] = float32(math.Sin(float64(i*7+r*13+1))) * float32(math.Pow(10, float64((i+r)%9-4)))
	}
	return b
}

// wantSum sums the inputs in rank order, as the package promises.
func wantSum(world, n int, mean bool) []float32 {
	s := input(0, n)
	for r := 1; r < world; r++ {
		for i, v := range input(r, n) {
			s[i] += v
		}
	}
	if mean {
		for i := range s {
			s[i] /= float32(world)
		}
	}
	return s
}

func sameBits(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

func TestAllReduceIsRankOrderedSum(t *testing.T) {
	for _, world := range []int{1, 2, 3, 4} {
		for _, n := range []int{0, 1, 1 << 20} {
			for _, mean := range []bool{false, true} {
				name := "sum"
				if mean {
					name = "mean"
				}
				t.Run(strings.Join([]string{"world", itoa(world), "n", itoa(n), name}, "_"), func(t *testing.T) {
					want := wantSum(world, n, mean)
					var first [][]float32
					for run := range 2 { // a fresh job each time: same bits
						comms := mustJoin(t, world, TCPOptions{JobID: "j", Timeout: time.Minute})
						bufs := make([][]float32, world)
						errs := each(comms, func(r int, c Comm) error {
							bufs[r] = input(r, n)
							if mean {
								return c.AllReduceMean(bufs[r])
							}
							return c.AllReduceSum(bufs[r])
						})
						for r := range world {
							if errs[r] != nil {
								t.Fatalf("run %d rank %d: %v", run, r, errs[r])
							}
							if i := sameBits(bufs[r], want); i >= 0 {
								t.Fatalf("run %d rank %d: value %d differs from the rank-ordered sum", run, r, i)
							}
							if run == 1 && sameBits(bufs[r], first[r]) >= 0 {
								t.Fatalf("rank %d: run 2 differs from run 1", r)
							}
						}
						first = bufs
						closeAll(comms)
					}
				})
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestBroadcastFromEveryRoot(t *testing.T) {
	const world = 3
	comms := mustJoin(t, world, TCPOptions{})
	for root := range world {
		for _, n := range []int{0, 1, 1000} {
			bufs := make([][]float32, world)
			errs := each(comms, func(r int, c Comm) error {
				bufs[r] = input(r, n)
				return c.Broadcast(bufs[r], root)
			})
			for r := range world {
				if errs[r] != nil {
					t.Fatalf("root %d rank %d: %v", root, r, errs[r])
				}
				if sameBits(bufs[r], input(root, n)) >= 0 {
					t.Errorf("root %d n %d: rank %d did not get root's buffer", root, n, r)
				}
			}
		}
	}
	if err := comms[1].Broadcast(nil, world); err == nil {
		t.Errorf("Broadcast from root %d in a world of %d succeeded", world, world)
	}
}

func TestBarrierWaitsForEveryRank(t *testing.T) {
	const world = 4
	comms := mustJoin(t, world, TCPOptions{})
	var mu sync.Mutex
	arrived := 0
	errs := each(comms, func(r int, c Comm) error {
		if r == world-1 {
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		arrived++
		mu.Unlock()
		if err := c.Barrier(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if arrived != world {
			t.Errorf("rank %d left the barrier with %d of %d ranks arrived", r, arrived, world)
		}
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

func TestMismatchedCollectivesFailEveryRank(t *testing.T) {
	comms := mustJoin(t, 3, TCPOptions{Timeout: 10 * time.Second})
	errs := each(comms, func(r int, c Comm) error {
		if r == 2 {
			return c.AllReduceSum(make([]float32, 5)) // the others pass 4 values
		}
		return c.AllReduceSum(make([]float32, 4))
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 2 called all-reduce 1 (5 values)") {
			t.Errorf("rank %d: err = %v, want one naming rank 2's 5 values", r, err)
		}
	}
	if err := comms[1].Barrier(); err == nil {
		t.Error("a broken Comm accepted another collective")
	}
}

func TestHandshakeRefusesMismatch(t *testing.T) {
	tests := []struct {
		name string
		opts func(r int) TCPOptions
		want string
	}{
		{"wrong_job_id", func(r int) TCPOptions {
			if r == 1 {
				return TCPOptions{JobID: "other", ConnectTimeout: 5 * time.Second}
			}
			return TCPOptions{JobID: "mine", ConnectTimeout: 5 * time.Second}
		}, `rank 1 has job id "other" but rank 0 has "mine"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comms, errs := join(t, 2, tt.opts)
			defer closeAll(comms)
			for r, err := range errs {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("rank %d: err = %v, want %q", r, err, tt.want)
				}
			}
		})
	}
}

func TestHandshakeRefusesWrongWorldSize(t *testing.T) {
	ln, port := listen(t)
	errs := make([]error, 3)
	var g errgroup.Group
	for r, world := range []int{3, 3, 4} { // rank 2 thinks the world is 4
		g.Go(func() error {
			// Short: rank 1 may come after rank 0 gave up, and retry.
			o := TCPOptions{ConnectTimeout: time.Second}
			if r == 0 {
				o.Listener = ln
			}
			c, err := DialTCP(context.Background(), Info{Rank: r, World: world, MasterAddr: "127.0.0.1", MasterPort: port}, o)
			if c != nil {
				c.Close()
			}
			errs[r] = err
			return nil
		})
	}
	g.Wait()
	want := "rank 2 says the world size is 4 but rank 0 says 3"
	// Rank 1 may arrive after rank 0 gave up; then it cannot reach it.
	for _, r := range []int{0, 2} {
		if errs[r] == nil || !strings.Contains(errs[r].Error(), want) {
			t.Errorf("rank %d: err = %v, want %q", r, errs[r], want)
		}
	}
	if errs[1] == nil {
		t.Error("rank 1 joined a job whose rendezvous failed")
	}
}

func TestMissingRankFailsRendezvous(t *testing.T) {
	t.Run("rank_2_never_starts", func(t *testing.T) {
		ln, port := listen(t)
		errs := make([]error, 2)
		start := time.Now()
		var g errgroup.Group
		for r := range 2 {
			g.Go(func() error {
				o := TCPOptions{ConnectTimeout: 300 * time.Millisecond}
				if r == 0 {
					o.Listener = ln
				}
				_, errs[r] = DialTCP(context.Background(), Info{Rank: r, World: 3, MasterAddr: "127.0.0.1", MasterPort: port}, o)
				return nil
			})
		}
		g.Wait()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("rendezvous took %v to fail", d)
		}
		for r, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "ranks [2] did not join") {
				t.Errorf("rank %d: err = %v, want one naming rank 2", r, err)
			}
		}
	})
	t.Run("rank_0_never_starts", func(t *testing.T) {
		ln, port := listen(t)
		ln.Close() // nothing listens there now
		start := time.Now()
		_, err := DialTCP(context.Background(), Info{Rank: 1, World: 2, MasterAddr: "127.0.0.1", MasterPort: port}, TCPOptions{ConnectTimeout: 300 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "could not reach rank 0") {
			t.Errorf("err = %v, want could not reach rank 0", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
			t.Errorf("gave up after %v, want about 300ms", d)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ln, port := listen(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := DialTCP(ctx, Info{Rank: 0, World: 2, MasterAddr: "127.0.0.1", MasterPort: port}, TCPOptions{Listener: ln})
		if err == nil {
			t.Error("rendezvous outlived its context")
		}
	})
}

func TestDeadRankFailsEveryOtherRank(t *testing.T) {
	tests := []struct {
		name    string
		dead    int
		world   int
		partial bool // dies halfway through sending its buffer
	}{
		{"rank_2_of_3", 2, 3, false},
		{"rank_1_of_4", 1, 4, false},
		{"rank_0_of_3", 0, 3, false},
		{"rank_2_of_3_halfway_through_its_buffer", 2, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comms := mustJoin(t, tt.world, TCPOptions{Timeout: time.Minute})
			// One all-reduce that works, then the dead rank goes away
			// during the second.
			errs := each(comms, func(r int, c Comm) error { return c.AllReduceSum(input(r, 1000)) })
			for r, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", r, err)
				}
			}
			start := time.Now()
			errs = each(comms, func(r int, c Comm) error {
				if r == tt.dead {
					time.Sleep(50 * time.Millisecond)
					tc := c.(*tcpComm)
					if tt.partial {
						h := header{op: opSum, seq: 2, n: 1 << 16, plen: 4 << 16}
						var hb [headerSize]byte
						h.put(hb[:])
						tc.peers[0].Write(append(hb[:], make([]byte, 2<<16)...))
					}
					for _, p := range tc.peers { // as if the process died
						if p != nil {
							p.Close()
						}
					}
					return nil
				}
				return c.AllReduceSum(input(r, 1<<16))
			})
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the others took %v to notice", d)
			}
			want := "rank " + itoa(tt.dead) + " closed its connection during all-reduce 2 (did it crash? see its log)"
			for r, err := range errs {
				if r == tt.dead {
					continue
				}
				t.Logf("rank %d: %v", r, err)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("rank %d: err = %v, want %q", r, err, want)
				}
			}
		})
	}
}

func TestStuckRankTimesOut(t *testing.T) {
	comms := mustJoin(t, 3, TCPOptions{Timeout: 300 * time.Millisecond})
	start := time.Now()
	errs := each(comms, func(r int, c Comm) error {
		if r == 1 {
			return nil // never calls the collective
		}
		return c.Barrier()
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout took %v", d)
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "rank 1 did not do its part of barrier 1") {
		t.Errorf("rank 0: err = %v, want one naming rank 1", errs[0])
	}
	if errs[2] == nil {
		t.Error("rank 2: barrier succeeded without rank 1")
	}
}

// BenchmarkAllReduce measures one all-reduce over loopback; bytes/s counts
// one rank's buffer.
func BenchmarkAllReduce(b *testing.B) {
	for _, world := range []int{2, 4} {
		for _, n := range []int{1 << 10, 1 << 20} {
			b.Run("world_"+itoa(world)+"_values_"+itoa(n), func(b *testing.B) {
				comms, errs := join(b, world, func(int) TCPOptions { return TCPOptions{} })
				defer closeAll(comms)
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				bufs := make([][]float32, world)
				for r := range bufs {
					bufs[r] = input(r, n)
				}
				b.SetBytes(int64(4 * n))
				b.ResetTimer()
				for range b.N {
					for _, err := range each(comms, func(r int, c Comm) error { return c.AllReduceSum(bufs[r]) }) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
