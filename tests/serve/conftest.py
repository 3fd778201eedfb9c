"""A store of the embedded digits' test images, from a small Matryoshka run (latent 4, nested
sizes 2 and 4), served by uvicorn on a free loopback port for the tests of the service."""

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from repvae.cli import main
from repvae.export import OnnxEncoder, TorchEncoder
from repvae.run import load
from repvae.serve.app import ServiceSettings, create_app
from repvae.store import EmbeddingStore

FIXTURE_RUN = Path(__file__).parents[1] / "fixtures" / "old_runs" / "minfovae"
TOKEN = "s3cret"


@pytest.fixture(scope="session")
def digits_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    run = shutil.copytree(FIXTURE_RUN, root / "run")
    store = root / "store"
    code = main(["index", str(run), "--split", "test", "--out", str(store), "--no-progress"])
    assert code == 0
    return store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn in a thread, on loopback: the tests talk to it over real HTTP."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(store_dir: Path, encoder: str = "torch", **settings) -> Server:
    store = EmbeddingStore.open(store_dir)
    run = Path(store.manifest.run)
    chosen = (
        OnnxEncoder(run / "encoder.onnx") if encoder == "onnx" else TorchEncoder(load(run).model)
    )
    return Server(create_app(store, chosen, ServiceSettings(encoder_name=encoder, **settings)))


@pytest.fixture(scope="session")
def token() -> str:
    return TOKEN


@pytest.fixture(scope="session")
def server(digits_store, tmp_path_factory):
    # a private copy: the tests that write (POST /items) must not change the shared store
    store = shutil.copytree(digits_store, tmp_path_factory.mktemp("served") / "store")
    with serve(store, token=TOKEN, max_body=200_000, funnel=[2, 4], shortlist=[50]) as running:
        yield running
