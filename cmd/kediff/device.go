package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/cuda"
)

// deviceFlags are --device and --precision, shared by the commands that run
// models.
type deviceFlags struct {
	device, precision *string
}

func addDeviceFlags(fs *flag.FlagSet) deviceFlags {
	return deviceFlags{
		device:    fs.String("device", "cpu", "where the model runs: cpu, cuda, cuda:N (a GPU, with libkediff_cuda.so from go tool task build-cuda) or cuda-emu (that library's host emulation, for checks)"),
		precision: fs.String("precision", "", "fp32 or bf16 (bf16 activations and GEMM inputs, fp32 weights and optimizer state); default bf16 on a GPU, fp32 on the CPU"),
	}
}

// gpu is the GPU index the flags name, or -1 for the CPU and the host
// emulation.
func (f deviceFlags) gpu() int {
	o, isCUDA, err := cuda.ParseDevice(*f.device)
	if err != nil || !isCUDA || o.Emulate {
		return -1
	}
	return o.Device
}

// open returns the backend the flags ask for.
func (f deviceFlags) open() (kernels.Backend, error) {
	o, isCUDA, err := cuda.ParseDevice(*f.device)
	if err != nil {
		return nil, err
	}
	if !isCUDA && *f.device != "cpu" {
		return nil, fmt.Errorf("--device %q: want cpu, cuda, cuda:N or cuda-emu", *f.device)
	}
	switch *f.precision {
	case "", "fp32":
	case "bf16":
		o.BF16 = true
	default:
		return nil, fmt.Errorf("--precision %q: want fp32 or bf16", *f.precision)
	}
	if !isCUDA {
		if o.BF16 {
			return nil, errors.New("--precision bf16 needs --device cuda: the CPU kernels run fp32")
		}
		return &kernels.CPU{}, nil
	}
	if *f.precision == "" {
		o.BF16 = true
	}
	d, err := cuda.Open(o)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "kediff: device %s: %s\n", *f.device, d)
	return d, nil
}
