package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Library file names: the GPU build (nvcc, task build-cuda) and the host
// emulation (g++, task build).
const (
	LibName    = "libkediff_cuda.so"
	EmuLibName = "libkediff_cuda_emu.so"
)

// Options say which device Open opens.
type Options struct {
	Device  int  // GPU index (cuda:N)
	Emulate bool // the host emulation of the library instead of a GPU
	BF16    bool // mixed precision: bf16 activations
	// Library is the library's path; "" searches $KEDIFF_CUDA_LIB (or
	// $KEDIFF_CUDA_EMU_LIB), the executable's folder, then the dynamic
	// loader's path.
	Library string
}

// ParseDevice reads a --device value: "cuda" or "cuda:N" (a GPU),
// "cuda-emu" (the host emulation). ok is false for anything else ("cpu").
func ParseDevice(spec string) (o Options, ok bool, err error) {
	switch {
	case spec == "cuda":
		return Options{}, true, nil
	case spec == "cuda-emu":
		return Options{Emulate: true}, true, nil
	case strings.HasPrefix(spec, "cuda:"):
		n, err := strconv.Atoi(spec[len("cuda:"):])
		if err != nil || n < 0 {
			return o, true, fmt.Errorf("--device %q: want cuda:N with N a GPU index", spec)
		}
		return Options{Device: n}, true, nil
	}
	return o, false, nil
}

// candidates lists where Open looks for the library.
func candidates(o Options) []string {
	name, env := LibName, "KEDIFF_CUDA_LIB"
	if o.Emulate {
		name, env = EmuLibName, "KEDIFF_CUDA_EMU_LIB"
	}
	if o.Library != "" {
		return []string{o.Library}
	}
	var out []string
	if p := os.Getenv(env); p != "" {
		out = append(out, p)
	}
	if exe, err := os.Executable(); err == nil {
		out = append(out, filepath.Join(filepath.Dir(exe), name))
	}
	return append(out, name)
}

// Open loads libkediff_cuda (or its emulation) and selects the device. It
// fails with what to do when the library, the driver, a GPU or cuBLAS is
// missing.
func Open(o Options) (*Device, error) {
	var errs []string
	for _, path := range candidates(o) {
		if strings.Contains(path, "/") {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, path+": not found")
				continue
			}
		}
		d, err := open(path, o.Device, o.Emulate, o.BF16)
		if err == nil {
			return d, nil
		}
		if isLoadError(err) {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		return nil, err // the library loaded: its error (no driver, no GPU, no cuBLAS) is the answer
	}
	build := "go tool task build-cuda (needs nvcc: task setup-cuda)"
	if o.Emulate {
		build = "go tool task build"
	}
	return nil, fmt.Errorf("kernels/cuda: the library is not there (%s); build it with %s or point KEDIFF_CUDA_LIB at it", strings.Join(errs, "; "), build)
}

// loadError marks a library that could not be opened (as opposed to one that
// opened and refused the device).
type loadError struct{ err error }

func (e loadError) Error() string { return e.err.Error() }

func isLoadError(err error) bool {
	var le loadError
	return errors.As(err, &le)
}

// Error is a failure of a device op (CUDA, cuBLAS, out of memory, a bad
// argument): Backend methods cannot return errors, so they panic with one,
// and kediff's commands print it as the command's error.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("kernels/cuda: %s: %v", e.Op, e.Err) }
