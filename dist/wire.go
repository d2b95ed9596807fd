package dist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
)

// The wire format, all integers little-endian.
//
// Handshake, rank r > 0 to rank 0:
//
//	"KDST" version:u32 rank:u32 world:u32 len:u32 jobID[len]
//
// and rank 0's verdict, sent once every rank has joined or the rendezvous
// has failed (status 0: ok, 1: rejected, message says why):
//
//	"KDST" status:u32 len:u32 message[len]
//
// Collective frames, both ways:
//
//	op:u32 root:u32 seq:u64 n:u64 plen:u64 payload[plen]
//
// n is the buffer length in values on the sending rank and the payload is
// float32s (plen = 4n) or nothing; an abort frame's payload is the error
// text that ended the job.

const (
	magic      = "KDST"
	version    = 1
	headerSize = 32
	maxMessage = 64 << 10 // bytes of an error text on the wire
)

type op uint32

const (
	opSum op = 1 + iota
	opMean
	opBroadcast
	opBarrier
	opAbort
)

func (o op) String() string {
	switch o {
	case opSum:
		return "all-reduce"
	case opMean:
		return "all-reduce (mean)"
	case opBroadcast:
		return "broadcast"
	case opBarrier:
		return "barrier"
	case opAbort:
		return "abort"
	}
	return fmt.Sprintf("op(%d)", uint32(o))
}

type header struct {
	op   op
	root uint32
	seq  uint64
	n    uint64
	plen uint64
}

func (h header) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], uint32(h.op))
	binary.LittleEndian.PutUint32(b[4:], h.root)
	binary.LittleEndian.PutUint64(b[8:], h.seq)
	binary.LittleEndian.PutUint64(b[16:], h.n)
	binary.LittleEndian.PutUint64(b[24:], h.plen)
}

func parseHeader(b []byte) header {
	return header{
		op:   op(binary.LittleEndian.Uint32(b[0:])),
		root: binary.LittleEndian.Uint32(b[4:]),
		seq:  binary.LittleEndian.Uint64(b[8:]),
		n:    binary.LittleEndian.Uint64(b[16:]),
		plen: binary.LittleEndian.Uint64(b[24:]),
	}
}

// writeFrame writes h and payload in one call, so a frame is one write.
func writeFrame(c net.Conn, h header, payload []byte) error {
	var hb [headerSize]byte
	h.plen = uint64(len(payload))
	h.put(hb[:])
	bufs := net.Buffers{hb[:], payload}
	_, err := bufs.WriteTo(c)
	return err
}

// remoteAbort is an error another rank reported in an abort frame.
type remoteAbort struct{ msg string }

func (e *remoteAbort) Error() string { return e.msg + " (reported by rank 0)" }

// readHeader reads a frame header; an abort frame becomes a *remoteAbort.
func readHeader(c net.Conn) (header, error) {
	var hb [headerSize]byte
	if _, err := io.ReadFull(c, hb[:]); err != nil {
		return header{}, err
	}
	h := parseHeader(hb[:])
	if h.op == opAbort {
		if h.plen > maxMessage {
			return h, fmt.Errorf("abort message of %d bytes exceeds %d", h.plen, maxMessage)
		}
		msg := make([]byte, h.plen)
		if _, err := io.ReadFull(c, msg); err != nil {
			return h, err
		}
		return h, &remoteAbort{string(msg)}
	}
	return h, nil
}

// readPayload reads plen bytes into *scratch, growing it as needed.
func readPayload(c net.Conn, plen uint64, scratch *[]byte) ([]byte, error) {
	if uint64(cap(*scratch)) < plen {
		*scratch = make([]byte, plen)
	}
	b := (*scratch)[:plen]
	_, err := io.ReadFull(c, b)
	return b, err
}

func encode(dst []byte, src []float32) []byte {
	if cap(dst) < 4*len(src) {
		dst = make([]byte, 4*len(src))
	}
	dst = dst[:4*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
	return dst
}

func decode(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// addInto adds the float32s in src to dst, element by element.
func addInto(dst []float32, src []byte) {
	for i := range dst {
		dst[i] += math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func writeHello(c net.Conn, rank, world int, job string) error {
	b := make([]byte, 0, 20+len(job))
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(rank))
	b = binary.LittleEndian.AppendUint32(b, uint32(world))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(job)))
	b = append(b, job...)
	_, err := c.Write(b)
	return err
}

type hello struct {
	version, rank, world uint32
	job                  string
}

var errNotOurs = errors.New("not a kediff dist peer")

func readHello(c net.Conn) (hello, error) {
	var b [20]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return hello{}, err
	}
	if string(b[:4]) != magic {
		return hello{}, errNotOurs
	}
	h := hello{
		version: binary.LittleEndian.Uint32(b[4:]),
		rank:    binary.LittleEndian.Uint32(b[8:]),
		world:   binary.LittleEndian.Uint32(b[12:]),
	}
	n := binary.LittleEndian.Uint32(b[16:])
	if n > maxMessage {
		return hello{}, errNotOurs
	}
	job := make([]byte, n)
	if _, err := io.ReadFull(c, job); err != nil {
		return hello{}, err
	}
	h.job = string(job)
	return h, nil
}

func writeVerdict(c net.Conn, msg string) error {
	status := uint32(0)
	if msg != "" {
		status = 1
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	b := append([]byte(magic), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], status)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(msg)))
	_, err := c.Write(append(b, msg...))
	return err
}

// readVerdict returns rank 0's rejection text, or "" when it let us in.
func readVerdict(c net.Conn) (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return "", err
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if string(b[:4]) != magic || n > maxMessage {
		return "", errors.New("rank 0 answered with something that is not a kediff dist verdict (is MASTER_PORT another service's port?)")
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil {
		return "", err
	}
	if binary.LittleEndian.Uint32(b[4:]) == 0 {
		return "", nil
	}
	if len(msg) == 0 {
		msg = []byte("rank 0 rejected this rank without saying why")
	}
	return string(msg), nil
}
