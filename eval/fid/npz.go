package fid

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/kediff/kediff/internal/atomicfile"
)

// WriteNPZ writes s as pytorch-fid's statistics file: a zip (stored, as
// np.savez writes it) holding mu.npy (float64 [dim]) and sigma.npy (float64
// [dim, dim]) in numpy's .npy format 1.0, which np.load(path)["mu"] and
// ["sigma"] read.
func WriteNPZ(w io.Writer, s Stats) error {
	if err := s.check("to write"); err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, a := range []struct {
		name  string
		shape []int
		data  []float64
	}{{"mu", []int{s.Dim}, s.Mu}, {"sigma", []int{s.Dim, s.Dim}, s.Sigma}} {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: a.name + ".npy", Method: zip.Store})
		if err != nil {
			return fmt.Errorf("fid: writing statistics: %w", err)
		}
		if err := writeNPY(f, a.shape, a.data); err != nil {
			return fmt.Errorf("fid: writing statistics: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("fid: writing statistics: %w", err)
	}
	return nil
}

// WriteNPZFile writes s to path with WriteNPZ, atomically.
func WriteNPZFile(path string, s Stats) error {
	if err := s.check("to write"); err != nil {
		return err
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { return WriteNPZ(w, s) }); err != nil {
		return fmt.Errorf("fid: writing statistics %s: %w", path, err)
	}
	return nil
}

// writeNPY writes float64 little-endian data of shape as .npy 1.0, its
// header padded to a multiple of 64 bytes as numpy does.
func writeNPY(w io.Writer, shape []int, data []float64) error {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	st := strings.Join(dims, ", ")
	if len(shape) == 1 {
		st += ","
	}
	h := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", st)
	pad := 64 - (10+len(h)+1)%64
	if pad == 64 {
		pad = 0
	}
	h += strings.Repeat(" ", pad) + "\n"
	var pre [10]byte
	copy(pre[:], "\x93NUMPY\x01\x00")
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(h)))
	buf := make([]byte, 0, 10+len(h)+8*len(data))
	buf = append(append(buf, pre[:]...), h...)
	for _, v := range data {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	_, err := w.Write(buf)
	return err
}

// ReadNPZ reads statistics from a pytorch-fid .npz file of size bytes: the
// arrays mu ([dim]) and sigma ([dim, dim]), float64 or float32,
// little-endian, C order. N is 0 (the file does not record it).
func ReadNPZ(r io.ReaderAt, size int64) (Stats, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Stats{}, fmt.Errorf("fid: statistics are not an .npz (zip) file: %w (write them with np.savez(path, mu=mu, sigma=sigma) or kediff eval fid --save-stats)", err)
	}
	arrays := map[string]*zip.File{}
	for _, f := range zr.File {
		arrays[strings.TrimSuffix(f.Name, ".npy")] = f
	}
	read := func(name string) ([]int, []float64, error) {
		f, ok := arrays[name]
		if !ok {
			return nil, nil, fmt.Errorf("fid: statistics have no array %q (want mu and sigma, as pytorch-fid writes)", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, nil, fmt.Errorf("fid: statistics array %s: %w", name, err)
		}
		defer rc.Close()
		shape, data, err := readNPY(rc)
		if err != nil {
			return nil, nil, fmt.Errorf("fid: statistics array %s: %w", name, err)
		}
		return shape, data, nil
	}
	ms, mu, err := read("mu")
	if err != nil {
		return Stats{}, err
	}
	ss, sigma, err := read("sigma")
	if err != nil {
		return Stats{}, err
	}
	if len(ms) != 1 || len(ss) != 2 || ss[0] != ms[0] || ss[1] != ms[0] {
		return Stats{}, fmt.Errorf("fid: statistics have mu of shape %v and sigma of shape %v, want [dim] and [dim dim]", ms, ss)
	}
	if ms[0] == 0 {
		return Stats{}, errors.New("fid: statistics have dimension 0")
	}
	return Stats{Mu: mu, Sigma: sigma, Dim: ms[0]}, nil
}

// ReadNPZFile reads statistics from the .npz file at path (see ReadNPZ).
func ReadNPZFile(path string) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, fmt.Errorf("fid: statistics: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Stats{}, fmt.Errorf("fid: statistics: %w", err)
	}
	s, err := ReadNPZ(f, fi.Size())
	if err != nil {
		return Stats{}, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

var (
	npyDescr   = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// maxNPYValues bounds an array's size (a 2048 x 2048 sigma is 4M values).
const maxNPYValues = 1 << 28

// readNPY reads a .npy array of float64 or float32 (little-endian, C order)
// as float64.
func readNPY(r io.Reader) ([]int, []float64, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, fmt.Errorf("not a .npy array: %w", err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, nil, errors.New("not a .npy array (no \\x93NUMPY magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		hlen = int(binary.LittleEndian.Uint16(pre[8:]))
	case 2, 3:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("truncated .npy header: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(append(pre[8:10:10], b[:]...)))
	default:
		return nil, nil, fmt.Errorf(".npy format version %d.%d, want 1.0, 2.0 or 3.0", pre[6], pre[7])
	}
	if hlen > 1<<16 {
		return nil, nil, fmt.Errorf(".npy header of %d bytes is too long", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, fmt.Errorf("truncated .npy header: %w", err)
	}
	h := string(hb)
	d, f, s := npyDescr.FindStringSubmatch(h), npyFortran.FindStringSubmatch(h), npyShape.FindStringSubmatch(h)
	if d == nil || f == nil || s == nil {
		return nil, nil, fmt.Errorf("unreadable .npy header %q", strings.TrimSpace(h))
	}
	size := 0
	switch d[1] {
	case "<f8":
		size = 8
	case "<f4":
		size = 4
	default:
		return nil, nil, fmt.Errorf("dtype %q, want float64 or float32 little-endian ('<f8', '<f4'); convert with arr.astype('<f8')", d[1])
	}
	if f[1] != "False" {
		return nil, nil, errors.New("fortran_order True, want C order (save np.ascontiguousarray(arr))")
	}
	var shape []int
	n := 1
	for _, p := range strings.Split(s[1], ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return nil, nil, fmt.Errorf("bad .npy shape (%s)", s[1])
		}
		shape = append(shape, v)
		if v > 0 && n > maxNPYValues/v {
			return nil, nil, fmt.Errorf(".npy shape (%s) is too large", s[1])
		}
		n *= v
	}
	raw := make([]byte, n*size)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, fmt.Errorf("shape (%s) needs %d bytes of data: %w", s[1], len(raw), err)
	}
	out := make([]float64, n)
	for i := range out {
		if size == 8 {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		} else {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	}
	return shape, out, nil
}
