"""repvae index and repvae search from the command line."""

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from repvae.cli import main
from repvae.store import EmbeddingStore

RUN = Path(__file__).parents[1] / "fixtures" / "old_runs" / "minfovae"


def test_index_then_search_by_id_and_by_image(tmp_path, capsys):
    run = shutil.copytree(RUN, tmp_path / "run")
    store = tmp_path / "store"
    assert main(["index", str(run), "--split", "test", "--out", str(store), "--no-progress"]) == 0
    assert "FAISS indexes at m = 2, 4" in capsys.readouterr().out
    assert len(EmbeddingStore.open(store)) == 359
    assert main(["search", str(store), "--query", "3", "--dim", "2", "-k", "4"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert "flat at m = 2" in out and len(rows) == 5  # header + 4 neighbours
    picture = tmp_path / "q.png"
    Image.fromarray(np.eye(8, dtype=np.uint8) * 255, "L").save(picture)
    funnel = ["--funnel", "2,4", "--shortlist", "50", "-k", "3"]
    assert main(["search", str(store), "--query", str(picture), *funnel]) == 0
    assert "funnel 2 -> 4" in capsys.readouterr().out
    assert main(["search", str(store), "--query", "nowhere.png", "--dim", "2"]) == 2
    assert "neither a stored id nor an image file" in capsys.readouterr().err
    assert main(["search", str(store), "--query", "9999", "--dim", "2"]) == 2


def test_index_refuses_an_existing_store_and_appends_only_what_is_missing(tmp_path, capsys):
    run = shutil.copytree(RUN, tmp_path / "run")
    store = tmp_path / "store"
    args = ["index", str(run), "--split", "test", "--out", str(store), "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "already holds a store; add to it with --append" in capsys.readouterr().err
    assert main([*args, "--append"]) == 0
    assert "359 images of digits/test are in the store already" in capsys.readouterr().out
    assert main([*args[:3], "val", *args[4:], "--append"]) == 0
    assert len(EmbeddingStore.open(store)) == 359 + 144
