"""TinyInception: pytorch-fid's InceptionV3 input/output layout at toy size,
randomly initialised with seed 0. make_fid_fixtures.py exports it to
eval/fid/testdata/tiny_inception.onnx; fid_features_ref.py runs it."""
import torch


class TinyInception(torch.nn.Module):
    """pytorch-fid's InceptionV3 layout at toy size."""

    def __init__(self, dims=2048):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2)
        self.c3 = torch.nn.Conv2d(16, 16, 3, stride=2)
        self.fc = torch.nn.Conv2d(16, dims, 1)

    def forward(self, x):
        x = 2 * x - 1  # pytorch-fid's normalize_input: [0,1] -> [-1,1]
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.relu(self.c3(x))
        x = torch.nn.functional.adaptive_avg_pool2d(x, (1, 1))
        return torch.relu(self.fc(x))


def tiny_inception():
    torch.manual_seed(0)
    return TinyInception().eval()
