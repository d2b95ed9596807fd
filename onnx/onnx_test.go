package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// needRuntime skips when no onnxruntime library can be loaded (a machine
// without "task setup"); everything else in these tests needs it.
func needRuntime(t testing.TB) {
	t.Helper()
	if err := Init(""); err != nil {
		t.Skipf("onnxruntime not available: %v", err)
	}
}

func TestLibraryPath(t *testing.T) {
	t.Run("explicit_missing", func(t *testing.T) {
		_, _, err := LibraryPath("/nonexistent/libonnxruntime.so")
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/libonnxruntime.so") {
			t.Fatalf("err = %v, want one naming the path", err)
		}
	})
	t.Run("env_missing", func(t *testing.T) {
		t.Setenv(EnvLibrary, "/nonexistent/ort.so")
		_, _, err := LibraryPath("")
		if err == nil || !strings.Contains(err.Error(), EnvLibrary) {
			t.Fatalf("err = %v, want one naming %s", err, EnvLibrary)
		}
	})
	t.Run("env_wins_over_default", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "lib.so")
		os.WriteFile(f, []byte("x"), 0o644)
		t.Setenv(EnvLibrary, f)
		p, src, err := LibraryPath("")
		if err != nil || p != f || src != "env" {
			t.Fatalf("got %q %q %v", p, src, err)
		}
	})
	t.Run("flag_wins_over_env", func(t *testing.T) {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.so"), filepath.Join(dir, "b.so")
		os.WriteFile(a, []byte("x"), 0o644)
		os.WriteFile(b, []byte("x"), 0o644)
		t.Setenv(EnvLibrary, b)
		p, src, err := LibraryPath(a)
		if err != nil || p != a || src != "flag" {
			t.Fatalf("got %q %q %v", p, src, err)
		}
	})
	t.Run("default_found_walking_up", func(t *testing.T) {
		t.Setenv(EnvLibrary, "")
		p, src, err := LibraryPath("")
		if err != nil {
			t.Fatal(err)
		}
		// The tests run in onnx/, one level below the repository root.
		if _, statErr := os.Stat("../" + DefaultLibrary); statErr == nil && src != "default" {
			t.Fatalf("got %q from %s, want the repository's %s", p, src, DefaultLibrary)
		}
	})
}

func TestOpenInspectRun(t *testing.T) {
	needRuntime(t)
	s, err := Open("testdata/tiny.onnx", SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, out := s.Inputs(), s.Outputs()
	if len(in) != 1 || in[0].Name != "x" || in[0].Type != "float32" || FormatShape(in[0].Shape) != "[N 3]" {
		t.Fatalf("inputs = %v", in)
	}
	if len(out) != 2 || out[0].Name != "y" || out[1].Type != "int64" {
		t.Fatalf("outputs = %v", out)
	}
	for _, n := range []int64{1, 4} {
		x := make([]float32, n*3)
		for i := range x {
			x[i] = float32(i)
		}
		res, err := s.Run(Float32("x", []int64{n, 3}, x))
		if err != nil {
			t.Fatal(err)
		}
		y := res[0].Float32s()
		if FormatShape(res[0].Shape) != FormatShape([]int64{n, 3}) || len(y) != len(x) {
			t.Fatalf("batch %d: y shape %v len %d", n, res[0].Shape, len(y))
		}
		for i := range x {
			if y[i] != 2*x[i]+1 {
				t.Fatalf("y[%d] = %v, want %v", i, y[i], 2*x[i]+1)
			}
		}
		if c := res[1].Int64s(); len(c) != 1 || c[0] != n {
			t.Fatalf("count = %v, want %d", c, n)
		}
	}
}

func TestConcurrentRun(t *testing.T) {
	needRuntime(t)
	s, err := Open("testdata/tiny.onnx", SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				x := []float32{float32(g), float32(k), 1}
				res, err := s.Run(Float32("", []int64{1, 3}, x))
				if err != nil {
					errs <- err
					return
				}
				if y := res[0].Float32s(); y[0] != 2*float32(g)+1 || y[1] != 2*float32(k)+1 {
					errs <- errors.New("wrong result under concurrency")
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	needRuntime(t)
	s, err := Open("testdata/tiny.onnx", SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(map[string][]int64{"x": {-1, 3}}, map[string][]int64{"y": {8, 3}}); err != nil {
		t.Fatalf("matching layout: %v", err)
	}
	err = s.Check(map[string][]int64{"x": {1, 3, 640, 640}}, nil)
	var se *ShapeError
	if !errors.As(err, &se) || se.Tensor != "x" || se.Model != "tiny.onnx" {
		t.Fatalf("err = %v, want a ShapeError for x", err)
	}
	for _, want := range []string{"tiny.onnx", `"x"`, "[N 3]", "[1 3 640 640]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if err := s.Check(nil, map[string][]int64{"count": {}}); !errors.As(err, &se) || se.GotType != "int64" {
		t.Fatalf("int64 output checked as float32: %v", err)
	}
	if err := s.Check(map[string][]int64{"images": {1, 3}}, nil); err == nil || !strings.Contains(err.Error(), `"x" float32 [N 3]`) {
		t.Fatalf("missing tensor: %v", err)
	}
}

func TestRunRejectsBadInputs(t *testing.T) {
	needRuntime(t)
	s, err := Open("testdata/tiny.onnx", SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, in := range map[string][]Tensor{
		"no_inputs":   nil,
		"wrong_rank":  {Float32("x", []int64{1, 3, 1}, make([]float32, 3))},
		"wrong_dim":   {Float32("x", []int64{1, 4}, make([]float32, 4))},
		"short_data":  {Float32("x", []int64{2, 3}, make([]float32, 5))},
		"wrong_type":  {Int64("x", []int64{1, 3}, make([]int64, 3))},
		"wrong_name":  {Float32("images", []int64{1, 3}, make([]float32, 3))},
		"unsupported": {{Name: "x", Shape: []int64{1, 3}, Data: []string{"a", "b", "c"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Run(in...); err == nil || !strings.Contains(err.Error(), "tiny.onnx") {
				t.Fatalf("err = %v, want one naming the model", err)
			}
		})
	}
}

func TestOpenBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]struct {
		path string
		want string
	}{
		"missing": {filepath.Join(dir, "nope.onnx"), "no such file"},
		"folder":  {dir, "is a folder"},
		"empty":   {write("empty.onnx", nil), "is empty"},
		"jpeg":    {write("img.onnx", []byte("\xff\xd8\xff\xe0JFIF")), "JPEG"},
		"zip":     {write("ckpt.onnx", []byte("PK\x03\x04....")), "zip"},
		"lfs":     {write("lfs.onnx", []byte("version https://git-lfs.github.com/spec/v1\n")), "LFS"},
		"text":    {write("text.onnx", []byte("hello, this is not a model at all\n")), "not a valid ONNX file"},
		"truncated": {write("trunc.onnx", func() []byte {
			b, _ := os.ReadFile("testdata/tiny.onnx")
			return b[:len(b)/2]
		}()), "tiny"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "text" || name == "truncated" {
				needRuntime(t) // these reach onnxruntime
			}
			_, err := Open(c.path, SessionOptions{})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if name == "truncated" {
				if !strings.Contains(err.Error(), "trunc.onnx") {
					t.Fatalf("err = %v, want the model named", err)
				}
				return
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestCUDAUnavailable(t *testing.T) {
	needRuntime(t)
	s, err := Open("testdata/tiny.onnx", SessionOptions{UseCUDA: true})
	if err == nil {
		// A GPU build on a GPU machine: fine.
		s.Close()
		t.Skip("CUDA provider available")
	}
	if !strings.Contains(err.Error(), "CUDA") || !strings.Contains(err.Error(), EnvLibrary) {
		t.Fatalf("err = %v, want a CUDA message pointing at %s", err, EnvLibrary)
	}
}
