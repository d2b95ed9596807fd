// Package cudaemu builds the host emulation of libkediff_cuda
// (kernels/cuda/csrc/kd_emu.cc, with the system's C++ compiler, as task build
// does) for tests of packages that run models with --device cuda-emu, and
// points KEDIFF_CUDA_EMU_LIB at it.
package cudaemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var once struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// Lib returns the emulation library's path, building it once per process
// (unless KEDIFF_CUDA_EMU_LIB names one already).
func Lib(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEDIFF_CUDA_EMU_LIB"); p != "" {
		return p
	}
	once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "..", "..", "kernels", "cuda", "csrc", "kd_emu.cc")
		dir, err := os.MkdirTemp("", "kediff-cuda-emu")
		if err != nil {
			once.err = err
			return
		}
		once.path = filepath.Join(dir, "libkediff_cuda_emu.so")
		once.out, once.err = exec.Command("g++", "-std=c++17", "-O2", "-pthread", "-shared", "-fPIC", "-o", once.path, src).CombinedOutput()
	})
	if once.err != nil {
		t.Fatalf("building the libkediff_cuda emulation: %v\n%s", once.err, once.out)
	}
	os.Setenv("KEDIFF_CUDA_EMU_LIB", once.path)
	return once.path
}
