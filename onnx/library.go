package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// EnvLibrary is the environment variable that names the onnxruntime shared
// library, e.g. a GPU build.
const EnvLibrary = "KEDIFF_ONNXRUNTIME"

// DefaultLibrary is where "task setup" (tools/setup.sh) puts the library that
// the npm package onnxruntime-node ships, relative to the repository root.
const DefaultLibrary = ".cache/onnxruntime/1.30.0/libonnxruntime.so.1"

// SystemLibrary is the name handed to the dynamic loader when no other
// library is found.
const SystemLibrary = "libonnxruntime.so"

// LibraryPath returns the onnxruntime shared library to load and where the
// choice came from ("flag", "env", "default", "system"), in the order the
// package doc gives. explicit is a flag value or SessionOptions.Library; ""
// means none.
func LibraryPath(explicit string) (path, source string, err error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", "", fmt.Errorf("onnx: onnxruntime library %s: %w (give the path of libonnxruntime.so, or run \"task setup\")", explicit, err)
		}
		return explicit, "flag", nil
	}
	if env := os.Getenv(EnvLibrary); env != "" {
		if _, err := os.Stat(env); err != nil {
			return "", "", fmt.Errorf("onnx: %s=%s: %w (point it at libonnxruntime.so, or unset it)", EnvLibrary, env, err)
		}
		return env, "env", nil
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if exe, err := filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		if p, ok := findUp(dir, DefaultLibrary); ok {
			return p, "default", nil
		}
	}
	return SystemLibrary, "system", nil
}

// findUp looks for rel in dir and each of its parents.
func findUp(dir, rel string) (string, bool) {
	for {
		p := filepath.Join(dir, rel)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

var env struct {
	sync.Mutex
	path    string // the library loaded, "" before Init succeeds
	version string
}

// Init loads the onnxruntime shared library (resolved by LibraryPath from
// explicit) and creates the process-wide environment. It is called by Open;
// call it directly to fail early or to report the version. Calling it again is
// a no-op, unless explicit names a library other than the one loaded, which is
// an error.
func Init(explicit string) error {
	env.Lock()
	defer env.Unlock()
	if env.path != "" {
		if explicit != "" && !sameFile(explicit, env.path) {
			return fmt.Errorf("onnx: onnxruntime is already loaded from %s; cannot switch to %s in the same process", env.path, explicit)
		}
		return nil
	}
	path, source, err := LibraryPath(explicit)
	if err != nil {
		return err
	}
	version, err := loadLibrary(path)
	if err != nil {
		hint := "give its path with --onnxruntime or " + EnvLibrary
		if source == "system" {
			hint = "run \"task setup\" (fetches " + DefaultLibrary + "), or give the library with --onnxruntime or " + EnvLibrary
		}
		return fmt.Errorf("onnx: loading onnxruntime from %s (%s): %v: %s", path, source, err, hint)
	}
	env.path = path
	env.version = version
	return nil
}

// Loaded reports the library path and onnxruntime version in use, or empty
// strings before Init.
func Loaded() (path, version string) {
	env.Lock()
	defer env.Unlock()
	return env.path, env.version
}

func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return errors.Is(errA, os.ErrNotExist) == false && a == b
	}
	return os.SameFile(sa, sb)
}
