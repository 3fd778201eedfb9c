"""The pipeline's layers run one way, and imports stay at module level."""

import ast
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "repvae"

# Imports inside functions, each with the reason it is there. A new one fails the test below:
# move it to the top of its module, or add it here with its reason.
FUNCTION_LEVEL_IMPORTS = {
    # Lightning takes about 4 s to import; only the commands that train pay for it
    ("cli.py", "repvae.training"): "startup time of the commands that do not train",
    ("cli.py", "repvae.studies.runner"): "startup time of the commands that do not train",
    ("cli.py", "repvae.demo"): "startup time of the commands that do not train",
    ("evaluate/fid.py", "torchmetrics.image.fid"): "optional dependency (Inception FID)",
    ("evaluate/fid.py", "pytorch_fid.inception"): "optional dependency (Inception FID)",
    ("plots/figures.py", "umap"): "optional dependency (umap-learn)",
    ("cli.py", "uvicorn"): "optional dependency (repvae[serve])",
    ("cli.py", "repvae.serve.app"): "optional dependency (repvae[serve]: FastAPI)",
    ("store/core.py", "faiss"): "optional dependency (repvae[serve]: faiss-cpu)",
    # it imports einx (about 1 s); only building a VQ-VAE needs it, not every command
    ("models/vqvae.py", "vector_quantize_pytorch"): "startup time of the commands without a VQ",
    ("export.py", "onnxruntime"): "optional dependency (repvae[serve])",
    ("evaluate/boosting.py", "lightgbm"): "only for the lightgbm DCI backend (startup time)",
    ("studies/executors.py", "ray"): "optional dependency (repvae[ray])",
    ("studies/executors.py", "submitit"): "optional dependency (repvae[slurm])",
    # inside a Slurm job only; the CLI imports the executors module for every command
    (
        "studies/executors.py",
        "lightning.pytorch.utilities.exceptions",
    ): "startup time of the commands that do not train",
}


def test_no_layer_imports_a_layer_above_it():
    # pyproject.toml's [tool.importlinter] layers contract
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def _function_level_imports() -> set[tuple[str, str]]:
    found = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                name = path.relative_to(SOURCE).as_posix()
                if isinstance(inner, ast.Import):
                    found |= {(name, alias.name) for alias in inner.names}
                elif isinstance(inner, ast.ImportFrom) and inner.module:
                    found.add((name, inner.module))
    return found


def test_function_level_imports_are_only_the_listed_ones():
    assert _function_level_imports() == set(FUNCTION_LEVEL_IMPORTS)
