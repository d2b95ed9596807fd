package dist

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// tcpComm is the Comm DialTCP returns.
type tcpComm struct {
	rank, world int
	timeout     time.Duration
	peers       []net.Conn // on rank 0 one per other rank; elsewhere peers[0] only
	in          [][]byte   // receive scratch, per peer
	out         []byte     // send scratch
	seq         uint64     // collectives done; the next is seq+1
	broken      error      // the error that ended the job
	closed      bool
}

func (c *tcpComm) String() string { return "TCP rendezvous" }
func (c *tcpComm) Rank() int      { return c.rank }
func (c *tcpComm) Size() int      { return c.world }

func (c *tcpComm) AllReduceSum(buf []float32) error  { return c.collective(opSum, 0, buf) }
func (c *tcpComm) AllReduceMean(buf []float32) error { return c.collective(opMean, 0, buf) }
func (c *tcpComm) Barrier() error                    { return c.collective(opBarrier, 0, nil) }

// AllReduceSumBF16 moves float32 over TCP (the wire format has one element
// type); the sum is the same as a bf16 wire format summed in float32 gives.
func (c *tcpComm) AllReduceSumBF16(buf []uint16) error { return allReduceBF16(c, buf) }

func (c *tcpComm) Broadcast(buf []float32, root int) error {
	if err := checkRoot(root, c.world); err != nil {
		return err
	}
	return c.collective(opBroadcast, root, buf)
}

func (c *tcpComm) collective(o op, root int, buf []float32) error {
	if c.closed {
		return fmt.Errorf("dist: rank %d: %v after Close", c.rank, o)
	}
	if c.broken != nil {
		return c.broken
	}
	want := header{op: o, root: uint32(root), seq: c.seq + 1, n: uint64(len(buf))}
	var err error
	if c.rank == 0 {
		err = c.lead(want, buf)
	} else {
		err = c.follow(want, buf)
	}
	if err != nil {
		c.broken = err
		return err
	}
	c.seq++
	return nil
}

// sends reports whether rank r sends its buffer to rank 0 in collective h.
func sends(h header, r int) bool {
	return h.op == opSum || h.op == opMean || (h.op == opBroadcast && int(h.root) == r)
}

// receives reports whether rank r gets a buffer back from rank 0.
func receives(h header, r int) bool {
	return h.op == opSum || h.op == opMean || (h.op == opBroadcast && int(h.root) != r)
}

// lead is rank 0's part of a collective: gather, reduce in rank order,
// send the result back.
func (c *tcpComm) lead(want header, buf []float32) error {
	deadline := time.Now().Add(c.timeout)
	var first error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() {
			first = err
			for _, p := range c.peers[1:] {
				p.SetReadDeadline(aLongTimeAgo) // wake the other readers
			}
		})
	}
	var g errgroup.Group
	for r := 1; r < c.world; r++ {
		g.Go(func() error {
			if err := c.gather(r, want, deadline); err != nil {
				fail(err)
				return err
			}
			return nil
		})
	}
	g.Wait()
	if first != nil {
		c.abort(first)
		return first
	}
	switch want.op {
	case opSum, opMean:
		for r := 1; r < c.world; r++ { // rank order: the guarantee
			addInto(buf, c.in[r])
		}
		if want.op == opMean {
			w := float32(c.world)
			for i := range buf {
				buf[i] /= w
			}
		}
	case opBroadcast:
		if want.root != 0 {
			decode(buf, c.in[want.root])
		}
	}
	var payload []byte
	if want.op != opBarrier {
		c.out = encode(c.out, buf)
		payload = c.out
	}
	var g2 errgroup.Group
	for r := 1; r < c.world; r++ {
		g2.Go(func() error {
			p := c.peers[r]
			p.SetWriteDeadline(deadline)
			body := payload
			if !receives(want, r) {
				body = nil
			}
			if err := writeFrame(p, want, body); err != nil {
				err = c.peerErr(r, want, err)
				fail(err)
				return err
			}
			return nil
		})
	}
	g2.Wait()
	if first != nil {
		c.abort(first)
	}
	return first
}

// gather reads rank r's frame for collective want into c.in[r].
func (c *tcpComm) gather(r int, want header, deadline time.Time) error {
	p := c.peers[r]
	p.SetReadDeadline(deadline)
	h, err := readHeader(p)
	if err != nil {
		return c.peerErr(r, want, err)
	}
	if h.seq != want.seq || h.op != want.op || h.n != want.n || (h.op == opBroadcast && h.root != want.root) {
		return fmt.Errorf("dist: rank %d called %s while rank 0 called %s: every rank must call the same collectives in the same order with buffers of the same length",
			r, describe(h), describe(want))
	}
	var plen uint64
	if sends(want, r) {
		plen = 4 * want.n
	}
	if h.plen != plen {
		return fmt.Errorf("dist: rank %d sent %d bytes in %s, want %d (are all ranks the same kediff binary?)", r, h.plen, describe(want), plen)
	}
	if _, err := readPayload(p, plen, &c.in[r]); err != nil {
		return c.peerErr(r, want, err)
	}
	return nil
}

// follow is the part of every rank but 0: send to rank 0 while reading its
// answer, so an abort from rank 0 is seen even while our send is stuck.
func (c *tcpComm) follow(want header, buf []float32) error {
	p := c.peers[0]
	p.SetDeadline(time.Now().Add(c.timeout))
	var payload []byte
	if sends(want, c.rank) {
		c.out = encode(c.out, buf)
		payload = c.out
	}
	var werr error
	var g errgroup.Group
	g.Go(func() error {
		werr = writeFrame(p, want, payload)
		return nil
	})
	rerr := c.answer(want, buf)
	if rerr != nil {
		p.SetWriteDeadline(aLongTimeAgo)
	}
	g.Wait()
	if rerr != nil {
		return rerr
	}
	if werr != nil {
		return c.peerErr(0, want, werr)
	}
	return nil
}

// answer reads rank 0's reply to collective want into buf.
func (c *tcpComm) answer(want header, buf []float32) error {
	p := c.peers[0]
	h, err := readHeader(p)
	if err != nil {
		return c.peerErr(0, want, err)
	}
	var plen uint64
	if receives(want, c.rank) {
		plen = 4 * want.n
	}
	if h.seq != want.seq || h.op != want.op || h.n != want.n || h.plen != plen {
		return fmt.Errorf("dist: rank %d: rank 0 answered %s (%d bytes) to %s: the ranks are out of step (are all ranks the same kediff binary?)", c.rank, describe(h), h.plen, describe(want))
	}
	b, err := readPayload(p, plen, &c.in[0])
	if err != nil {
		return c.peerErr(0, want, err)
	}
	if plen > 0 {
		decode(buf, b)
	}
	return nil
}

// abort tells every other rank why the job ended, best effort and briefly:
// they are waiting for rank 0's answer and would otherwise only see a
// timeout or a closed connection.
func (c *tcpComm) abort(err error) {
	msg := []byte(err.Error())
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	var g errgroup.Group
	for r := 1; r < c.world; r++ {
		g.Go(func() error {
			p := c.peers[r]
			p.SetWriteDeadline(time.Now().Add(time.Second))
			writeFrame(p, header{op: opAbort}, msg)
			return nil
		})
	}
	g.Wait()
}

// peerErr says what a failed read or write from rank r means.
func (c *tcpComm) peerErr(r int, h header, err error) error {
	var ra *remoteAbort
	switch {
	case errors.As(err, &ra):
		return err
	case isTimeout(err):
		return fmt.Errorf("dist: rank %d: rank %d did not do its part of %s within %v (is it stuck, or slower than TCPOptions.Timeout? see its log)", c.rank, r, name(h), c.timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("dist: rank %d closed its connection during %s (did it crash? see its log)", r, name(h))
	}
	return fmt.Errorf("dist: rank %d: %s with rank %d: %w", c.rank, name(h), r, err)
}

// name names a collective the way errors show it: "all-reduce 17".
func name(h header) string { return fmt.Sprintf("%v %d", h.op, h.seq) }

// describe is name with the arguments ranks must agree on.
func describe(h header) string {
	s := name(h)
	switch h.op {
	case opBroadcast:
		s += fmt.Sprintf(" (root %d, %d values)", h.root, h.n)
	case opSum, opMean:
		s += fmt.Sprintf(" (%d values)", h.n)
	}
	return s
}

// Close ends this rank's connections: it half-closes each, then waits
// briefly for the peer's end of stream, so data still in flight is not
// turned into a connection reset that would hide an abort message.
func (c *tcpComm) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	var g errgroup.Group
	for _, p := range c.peers {
		if p == nil {
			continue
		}
		g.Go(func() error {
			if tc, ok := p.(*net.TCPConn); ok {
				tc.CloseWrite()
				tc.SetReadDeadline(time.Now().Add(closeDrain))
				io.Copy(io.Discard, tc)
			}
			return p.Close()
		})
	}
	return g.Wait()
}
