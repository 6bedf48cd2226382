"""A generator as an ONNX model (export.py --format=onnx), for onnxruntime and the torch-free light.py.

The model: input `L` float32 [N,1,H,W], the lightness at network scale (CIE L / 50 - 1, in [-1,1]), and for a
generator trained with hints also `hints` float32 [N,3,H,W] (hint_ab = ab / 110 where a hint is placed, hint_mask;
all zeros = no hints: models.with_hints); output `ab` float32 [N,2,H,W] in [-1,1] (multiply by 110 for CIE ab).
N, H and W are dynamic; H and W must be multiples of the generator's `multiple` (32 for the encoder U-Net, today's photo
model; for the paper's U-Net image_size / 2: 16 for the 32 px CIFAR-10 model), stored in the
metadata as `multiple`. Weights are fp32 with BatchNorm folded into the convolutions (inference only: the EMA
weights when the checkpoint has them, dropout off). ONNX opset 17 (OPSET). metadata_props also hold `config` (the JSON
G.config that checkpoint.load_generator rebuilds it from: architecture, width, image_size, hints), so a loader
needs nothing else.

Exported with PyTorch's TorchScript-based exporter (dynamo=False; deprecated since PyTorch 2.9, still in 2.14),
which traces in about a second: the torch.export one (dynamo=True) exports the paper's U-Net but had not captured
the encoder U-Net's graph after 6 minutes (its timm encoder computes 'same' padding from the symbolic input size).
Traced, that padding is constant, which is right for every H and W that are multiples of 32 (even sizes at every
stride-2 layer); tests/test_onnx.py checks the output against PyTorch at two sizes other than the traced one.
"""
import copy
import io
import json
import warnings

import torch

from .utils import UserError, atomic_write

OPSET = 17  # ONNX opset: onnxruntime 1.12 and later run it


class _Forward(torch.nn.Module):
    """G with explicit positional inputs (L, or L and hints), so the traced graph has the inputs named above."""

    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, L, hints=None):
        return self.G(L, hints)


def export_onnx(G, path, opset=OPSET):
    """Write generator G (eval mode, BatchNorm folded as load_generator(fold=True) gives it) to `path` as an ONNX
    model: inputs L [N,1,H,W] (+ hints [N,3,H,W] when G.hints), output ab [N,2,H,W], float32, dynamic N, H, W;
    G.config and G.multiple in metadata_props. Atomic. Returns the onnx.ModelProto; UserError without the onnx
    package."""
    try:
        import onnx
    except ImportError:
        raise UserError("ONNX export needs the onnx package: pip install -r requirements-onnx.txt") from None
    G = copy.deepcopy(G).float().to('cpu', memory_format=torch.contiguous_format).eval()  # the caller's G untouched
    m = G.multiple
    args = (torch.zeros(1, 1, 2 * m, 3 * m),) + ((torch.zeros(1, 3, 2 * m, 3 * m),) if G.hints else ())
    names = ['L', 'hints'][:len(args)]
    axes = {0: 'batch', 2: 'height', 3: 'width'}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # the legacy exporter's deprecation notice and constant-folding remarks
        torch.onnx.export(_Forward(G).eval(), args, buffer, input_names=names, output_names=['ab'],
                          dynamic_axes={name: axes for name in names + ['ab']}, opset_version=opset, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(model, {'config': json.dumps(G.config), 'multiple': str(m)})
    model.producer_name, model.doc_string = 'colorize-gan', (
        f"Colorizer generator: L [N,1,H,W] = CIE L/50 - 1{' and hints [N,3,H,W]' if G.hints else ''} -> "
        f"ab [N,2,H,W] = CIE ab/110; H and W multiples of {m}")
    onnx.checker.check_model(model)
    atomic_write(path, lambda f: f.write(model.SerializeToString()))
    return model
