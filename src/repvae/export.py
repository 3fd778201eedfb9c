"""The encoder's MAP head as an ONNX graph, and encoders (torch or ONNX Runtime) that turn uint8
images into MAP embeddings for the store and the service.

The exported graph takes uint8 images ``[batch, C, H, W]`` (the batch axis dynamic) and returns
the posterior means ``[batch, D]``: the preprocessing (``/255``) is inside, so a client sends
pixels as they are. It is exported with the torch.export-based exporter (``dynamo=True``, the
default since torch 2.9; the TorchScript exporter is deprecated) from an example batch of 2,
since a dynamic axis cannot be specialised from a size of 0 or 1.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from repvae.files import atomic_path
from repvae.models import Model
from repvae.represent import encode

EXPORT_BATCH = 2
ONNX_FILE = "encoder.onnx"  # where `repvae export` writes it in the run folder


class Encoder(Protocol):
    """uint8 images ``[N, C, H, W]`` -> MAP embeddings ``[N, D]`` float32."""

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


class MapHead(nn.Module):
    """The model's encoder up to the posterior mean, as one traceable module."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images).mean


class ExportError(ValueError):
    """The model's encoder cannot be written as ONNX; the message says why."""


def export_onnx(model: Model, path: str | Path, opset: int = 18) -> Path:
    """Write ``model``'s MAP head to ``path`` (atomically) and check it with ONNX Runtime."""
    model = model.cpu().eval()
    c, h, w = model.shape
    example = torch.randint(0, 256, (EXPORT_BATCH, c, h, w), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    path = Path(path)
    with atomic_path(path) as temporary, warnings.catch_warnings():
        # the exporter's notes on torch internals (pytree LeafSpec) are not the user's business
        warnings.simplefilter("ignore", FutureWarning)
        try:
            program = torch.onnx.export(
                MapHead(model).eval(),
                (example,),
                dynamo=True,
                input_names=["images"],
                output_names=["embeddings"],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many kinds; say which family failed
            raise ExportError(
                f"the {model.family} family's encoder cannot be exported to ONNX "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200]})"
            ) from None
        if program is None:
            raise ExportError("the ONNX exporter returned no program")
        program.save(str(temporary))
    return path


class TorchEncoder:
    """The run's model, in eval mode, batched (what ``repvae embed`` computes)."""

    def __init__(self, model: Model, batch_size: int = 1024) -> None:
        self.model = model.eval()
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> np.ndarray:
        # writable and contiguous: torch cannot share a read-only (memory-mapped) array
        tensor = torch.from_numpy(np.require(images, np.uint8, ["C", "W"]))
        return encode(self.model, tensor, self.batch_size).mean.numpy()


class OnnxEncoder:
    """An exported encoder run by ONNX Runtime on the CPU, with an explicit thread count (its
    default pool is sized to the host's cores, whatever the container allows)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort  # optional dependency (repvae[serve])

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads() or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.uint8)
        return np.asarray(self.session.run(None, {self.input: batch})[0], dtype=np.float32)
