"""The exported ONNX encoder gives the torch encoder's embeddings to 1e-5, at any batch size."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from repvae.cli import main
from repvae.data import load_dataset
from repvae.export import ONNX_FILE, OnnxEncoder, TorchEncoder, export_onnx
from repvae.run import load

FIXTURES = Path(__file__).parent / "fixtures" / "old_runs"


@pytest.mark.parametrize("name", ["minfovae"])
def test_onnx_and_torch_give_the_same_embeddings(tmp_path, name):
    run = load(FIXTURES / name, device="cpu")
    path = export_onnx(run.model, tmp_path / "encoder.onnx")
    images = load_dataset("digits").test.images.numpy()
    onnx, torch_ = OnnxEncoder(path, threads=1), TorchEncoder(run.model)
    for batch in (1, 37, len(images)):  # the batch axis is dynamic
        np.testing.assert_allclose(onnx(images[:batch]), torch_(images[:batch]), atol=1e-5)


def test_export_command_writes_into_the_run_folder(tmp_path, capsys):
    run = shutil.copytree(FIXTURES / "vae", tmp_path / "run")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert (run / ONNX_FILE).exists() and "max |onnx - torch|" in capsys.readouterr().out
