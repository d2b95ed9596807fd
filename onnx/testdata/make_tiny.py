"""Writes tiny.onnx, the onnx package's test model: y = 2*x + 1 for x of
shape [N, 3] float32 (dynamic batch), and count = the row count as int64 of shape [1] (onnxruntime_go cannot return scalars).

Run with Debian's python3-torch:  /usr/bin/python3 onnx/testdata/make_tiny.py
"""
import os
import torch

class Tiny(torch.nn.Module):
    def forward(self, x):
        return 2 * x + 1, (x[:, 0] * 0 + 1).sum().reshape(1).to(torch.int64)

here = os.path.dirname(os.path.abspath(__file__))
torch.onnx.export(Tiny(), torch.zeros(2, 3), os.path.join(here, "tiny.onnx"),
                  input_names=["x"], output_names=["y", "count"],
                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=13)
