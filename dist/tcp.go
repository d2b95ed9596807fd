package dist

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// TCPOptions tune DialTCP; the zero value is ready to use.
type TCPOptions struct {
	// JobID must be the same on every rank; a rank that brings another is
	// refused, so two jobs sharing a port do not mix. Slurm's
	// SLURM_JOB_ID or torchrun's TORCHELASTIC_RUN_ID are good choices.
	JobID string

	// Timeout bounds each collective: a rank that has not done its part
	// by then fails the job. It must exceed the longest time one rank
	// spends away while the others wait in a collective, such as rank 0
	// writing a checkpoint. Default 5 minutes.
	Timeout time.Duration

	// ConnectTimeout bounds the rendezvous: how long rank 0 waits for
	// every rank to join and the others retry dialing it. Default 5 minutes.
	ConnectTimeout time.Duration

	// ListenAddr is where rank 0 listens; default MASTER_ADDR:MASTER_PORT.
	// Set ":<port>" where MASTER_ADDR names an address rank 0 does not own
	// (a Kubernetes ClusterIP service).
	ListenAddr string

	// Listener, on rank 0 only, replaces listening on ListenAddr with a
	// listener already bound (tests bind port 0). DialTCP closes it.
	Listener net.Listener
}

const (
	defaultTimeout = 5 * time.Minute
	helloTimeout   = 10 * time.Second // for one connection to say who it is
	verdictGrace   = 5 * time.Second  // rank 0's deadline may end a little after ours
	closeDrain     = time.Second      // Close waits this long for a peer's end of stream
)

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read
// or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// DialTCP joins the job described by info over TCP with torchrun's
// rendezvous: rank 0 listens at MASTER_ADDR:MASTER_PORT and every other rank
// dials it, retrying until ConnectTimeout, so the ranks may start in any
// order. DialTCP returns once every rank has joined, or with an error on
// every rank that joined when one is missing or disagrees about the world
// size or job id. A world of one needs no network and gets Single().
//
// Collectives go through rank 0 (a star): every rank sends its buffer to
// rank 0, which sums the buffers in rank order, 0, 1, 2, ..., and sends the
// one result back. So the result is bit-identical on every rank and from run
// to run with the same inputs, whatever the timing. Rank 0 moves
// 2(World-1) buffers per all-reduce; a ring that moves 2 per rank is for
// later, and will need the same fixed order to keep the guarantee.
func DialTCP(ctx context.Context, info Info, opts TCPOptions) (Comm, error) {
	if info.World < 1 || info.Rank < 0 || info.Rank >= info.World {
		return nil, fmt.Errorf("dist: rank %d of %d is not a place in a job (want 0 <= rank < world)", info.Rank, info.World)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = defaultTimeout
	}
	if info.World == 1 {
		if opts.Listener != nil {
			opts.Listener.Close()
		}
		return Single(), nil
	}
	deadline := time.Now().Add(opts.ConnectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c := &tcpComm{rank: info.Rank, world: info.World, timeout: opts.Timeout, peers: make([]net.Conn, info.World)}
	var err error
	if info.Rank == 0 {
		err = c.accept(ctx, info, opts, deadline)
	} else {
		err = c.dial(ctx, info, opts, deadline)
	}
	if err != nil {
		return nil, err
	}
	c.in = make([][]byte, info.World)
	return c, nil
}

// accept is rank 0's half of the rendezvous.
func (c *tcpComm) accept(ctx context.Context, info Info, opts TCPOptions, deadline time.Time) error {
	ln := opts.Listener
	if ln == nil {
		addr := opts.ListenAddr
		if addr == "" {
			if info.MasterPort == 0 {
				return errors.New("dist: rank 0 has no port to listen on: set MASTER_PORT (and MASTER_ADDR), as torchrun does")
			}
			addr = net.JoinHostPort(info.MasterAddr, strconv.Itoa(info.MasterPort))
		}
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", addr); err != nil {
			return fmt.Errorf("dist: rank 0 cannot listen for the other ranks: %w (is MASTER_PORT free, and does MASTER_ADDR name this machine?)", err)
		}
	}
	defer ln.Close()
	dl, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return fmt.Errorf("dist: rank 0: listener %T has no SetDeadline, so the rendezvous could wait forever", ln)
	}
	dl.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { dl.SetDeadline(aLongTimeAgo) })
	defer stop()

	joined := 1
	var refused []net.Conn // joined or not, told why the job failed
	fail := func(err error) error {
		msg := err.Error()
		for _, conn := range append(c.peers[1:], refused...) {
			if conn != nil {
				conn.SetDeadline(time.Now().Add(helloTimeout))
				writeVerdict(conn, msg)
				conn.Close()
			}
		}
		return err
	}
	for joined < c.world {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return fail(fmt.Errorf("dist: rank 0: rendezvous canceled with ranks %v still to join: %w", c.missing(), ctx.Err()))
			}
			if isTimeout(err) {
				return fail(fmt.Errorf("dist: rank 0: ranks %v did not join within %v (are they running? do they have the same MASTER_ADDR and MASTER_PORT? see their logs)", c.missing(), opts.ConnectTimeout))
			}
			return fail(fmt.Errorf("dist: rank 0: accepting the other ranks: %w", err))
		}
		hd := time.Now().Add(helloTimeout)
		if deadline.Before(hd) {
			hd = deadline
		}
		conn.SetDeadline(hd)
		h, err := readHello(conn)
		if err != nil {
			conn.Close() // not one of ours: a port scan or a health check
			continue
		}
		var bad error
		switch r := int(h.rank); {
		case h.version != version:
			bad = fmt.Errorf("dist: rank %d speaks protocol version %d but rank 0 speaks %d (are all ranks the same kediff binary?)", r, h.version, version)
		case int(h.world) != c.world:
			bad = fmt.Errorf("dist: rank %d says the world size is %d but rank 0 says %d (were all ranks started with the same world size?)", r, h.world, c.world)
		case h.job != opts.JobID:
			bad = fmt.Errorf("dist: rank %d has job id %q but rank 0 has %q (is another job using MASTER_PORT %d?)", r, h.job, opts.JobID, info.MasterPort)
		case r < 1 || r >= c.world:
			bad = fmt.Errorf("dist: a rank says it is rank %d, outside 1..%d", r, c.world-1)
		case c.peers[r] != nil:
			bad = fmt.Errorf("dist: two processes say they are rank %d (is a stale process from an earlier run still alive?)", r)
		}
		if bad != nil {
			refused = append(refused, conn)
			return fail(bad)
		}
		c.peers[h.rank] = conn
		joined++
	}
	for r, conn := range c.peers[1:] {
		if err := writeVerdict(conn, ""); err != nil {
			// Some ranks have been let in already and cannot be told
			// otherwise; closing makes their first collective fail.
			for _, p := range c.peers[1:] {
				p.Close()
			}
			return fmt.Errorf("dist: rank %d closed its connection during the rendezvous (did it crash? see its log): %w", r+1, err)
		}
		conn.SetDeadline(time.Time{})
	}
	return nil
}

// missing lists the ranks that have not joined.
func (c *tcpComm) missing() []int {
	var m []int
	for r := 1; r < c.world; r++ {
		if c.peers[r] == nil {
			m = append(m, r)
		}
	}
	return m
}

// dial is the half of the rendezvous of every rank but 0.
func (c *tcpComm) dial(ctx context.Context, info Info, opts TCPOptions, deadline time.Time) error {
	if info.MasterAddr == "" || info.MasterPort == 0 {
		return fmt.Errorf("dist: rank %d does not know where rank 0 is: set MASTER_ADDR and MASTER_PORT, as torchrun does", c.rank)
	}
	addr := net.JoinHostPort(info.MasterAddr, strconv.Itoa(info.MasterPort))
	var conn net.Conn
	var d net.Dialer
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		var err error
		conn, err = d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dist: rank %d: rendezvous with rank 0 at %s canceled: %w", c.rank, addr, ctx.Err())
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("dist: rank %d could not reach rank 0 at %s within %v: %w (is rank 0 running? is MASTER_ADDR:MASTER_PORT the same on every rank?)", c.rank, addr, opts.ConnectTimeout, err)
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	conn.SetDeadline(deadline.Add(verdictGrace))
	if err := writeHello(conn, c.rank, c.world, opts.JobID); err != nil {
		conn.Close()
		return fmt.Errorf("dist: rank %d: sending its hello to rank 0 at %s: %w", c.rank, addr, err)
	}
	msg, err := readVerdict(conn)
	switch {
	case err != nil && ctx.Err() != nil:
		err = fmt.Errorf("dist: rank %d: rendezvous canceled: %w", c.rank, ctx.Err())
	case isTimeout(err):
		err = fmt.Errorf("dist: rank %d reached rank 0 at %s but not every rank joined within %v (see rank 0's log)", c.rank, addr, opts.ConnectTimeout)
	case err != nil:
		err = fmt.Errorf("dist: rank %d: rank 0 at %s closed the connection during the rendezvous: %w (see rank 0's log)", c.rank, addr, err)
	case msg != "":
		err = errors.New(msg + " (reported by rank 0)")
	}
	if err != nil {
		conn.Close()
		return err
	}
	conn.SetDeadline(time.Time{})
	c.peers[0] = conn
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
