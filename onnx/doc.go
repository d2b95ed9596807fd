// Package onnx is kediff's one wrapper around onnxruntime (through
// github.com/yalue/onnxruntime_go): it finds the shared library, initialises
// the runtime once per process, opens models with the session options kediff
// exposes (intra-op threads, the CUDA execution provider), reports their
// inputs and outputs, checks them against the layout a caller expects, and
// runs them on plain Go slices.
//
// # The shared library
//
// LibraryPath picks libonnxruntime in this order:
//
//  1. an explicit path (a --onnxruntime flag value, SessionOptions.Library);
//  2. the environment variable KEDIFF_ONNXRUNTIME;
//  3. DefaultLibrary (.cache/onnxruntime/1.30.0/libonnxruntime.so.1, which
//     "task setup" fetches from the npm package onnxruntime-node), found by
//     walking up from the executable's folder and then from the working
//     folder;
//  4. the system's libonnxruntime.so, found by the dynamic loader.
//
// An explicit path or KEDIFF_ONNXRUNTIME that names a missing file is an
// error rather than a silent fall-through. The first Open (or Init) loads the
// library; a later call naming another library is an error, because one
// process holds one onnxruntime.
//
// # Sessions
//
//	s, err := onnx.Open("yolo.onnx", onnx.SessionOptions{IntraOpThreads: 2})
//	if err != nil { ... }           // not ONNX, unreadable, no CUDA, ...
//	defer s.Close()
//	err = s.Check(map[string][]int64{"images": {-1, 3, 640, 640}}, nil)
//	out, err := s.Run(onnx.Float32("images", []int64{n, 3, 640, 640}, pixels))
//
// Open inspects the model's inputs and outputs (names, element types and
// shapes; a dynamic dimension reads -1). Check compares them with the layout
// the caller was configured for and returns a *ShapeError naming the model,
// the tensor and the expected and actual shapes. Run takes the inputs in the
// model's input order, checks their shapes and element types, and returns
// every output copied into Go memory, so a dynamic batch dimension is just a
// different first dimension per call. Rank-0 (scalar) outputs are not
// supported (onnxruntime_go cannot hand them back); export them with shape [1].
//
// A Session is safe for concurrent use: onnxruntime's Run is thread-safe, and
// each call has its own input and output values. Close must not overlap a
// Run. With IntraOpThreads set, one session run from a few goroutines (or one
// session per worker, each with few threads) keeps all cores busy; the
// runtime's own default is one thread per physical core per Run.
//
// # Builds without cgo
//
// onnxruntime is reached through cgo. Built with CGO_ENABLED=0 the package
// still compiles (so kediff's other commands do), but Init, Open and Run
// return an error saying to rebuild with cgo; YCbCrPlanes falls back to
// its pure-Go loop.
package onnx
