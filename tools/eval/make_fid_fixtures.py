#!/usr/bin/env python3
"""Builds eval/fid/testdata/ (run from the repository root with Debian's
python3-torch and python3-onnx: /usr/bin/python3 tools/eval/make_fid_fixtures.py).

  tiny_inception.onnx   a small randomly initialised network in pytorch-fid's
                        layout (TinyInception below, seed 0): input "images"
                        [N,3,299,299] in [0,1], output "pool3" [N,2048,1,1];
                        fid_features_ref.py rebuilds the same module.
  bad_output_rank.onnx  input right, output [N,8,75] (rank 3)
  bad_input_shape.onnx  input [N,3,64,32] (not square), output [N,16]
  shapes_features.onnx  detect/testdata/shapes_yolov8.onnx cut after its
                        deepest backbone block (p5, before the detection
                        heads), then GlobalAveragePool and Flatten: input
                        "images" [N,3,128,128] in [0,1], output "features"
                        [N,D]: the feature network of the toy reproduction.
"""
import os

import onnx
import torch
from onnx import helper, utils

from tiny_inception import tiny_inception

OUT = "eval/fid/testdata"


class BadRank(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(3, 8, 3, stride=4)

    def forward(self, x):
        return self.c(x).mean(3)  # [N, 8, 75]


class BadInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(3, 16, 3)

    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(self.c(x), (1, 1)).flatten(1)


def export(model, shape, name, out_name):
    torch.onnx.export(model, torch.zeros(shape), os.path.join(OUT, name), opset_version=13,
                      input_names=["images"], output_names=[out_name],
                      dynamic_axes={"images": {0: "N"}, out_name: {0: "N"}})


def shapes_features():
    src = "detect/testdata/shapes_yolov8.onnx"
    cut = "/m/p5/p5.1/p5.1.2/Mul_output_0"
    tmp = os.path.join(OUT, "shapes_backbone.tmp.onnx")
    utils.extract_model(src, tmp, ["images"], [cut])
    m = onnx.shape_inference.infer_shapes(onnx.load(tmp))
    os.remove(tmp)
    g = m.graph
    dims = [d.dim_value for d in g.output[0].type.tensor_type.shape.dim]
    g.node.append(helper.make_node("GlobalAveragePool", [cut], ["pooled"]))
    g.node.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["N", dims[1]]))
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "shapes_features.onnx"))
    print("shapes_features.onnx: cut at %s %s, features [N, %d]" % (cut, dims, dims[1]))


def main():
    os.makedirs(OUT, exist_ok=True)
    export(tiny_inception(), (1, 3, 299, 299), "tiny_inception.onnx", "pool3")
    torch.manual_seed(1)
    export(BadRank().eval(), (1, 3, 299, 299), "bad_output_rank.onnx", "pool3")
    export(BadInput().eval(), (1, 3, 64, 32), "bad_input_shape.onnx", "pool3")
    shapes_features()


if __name__ == "__main__":
    main()
