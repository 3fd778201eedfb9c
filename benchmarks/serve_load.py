"""A load test of the running service on loopback: requests/s and p50/p99 latency for embedding
an uploaded image and for searching (flat, and through a funnel), at several numbers of
concurrent clients; every response is checked (an error is counted, never ignored).

    python benchmarks/serve_load.py STORE [--clients 1 8 32] [--requests 300] [--seconds 20]
        [--encoder torch|onnx] [--dim 16] [--funnel 8,128 --shortlist 200]

The service runs as `repvae serve` in its own process; the clients are asyncio tasks sharing one
httpx connection pool in this process, each sending its next request as soon as the last one is
answered (a closed loop: as the server slows, fewer requests are sent, so the latencies are those
the clients saw at the rate the server sustained). Each cell stops after ``--requests`` requests
or ``--seconds``, whichever comes first. Client and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from repvae.report.tables import markdown_table
from repvae.store import EmbeddingStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(store: EmbeddingStore) -> bytes:
    c, h, w = store.manifest.shape
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (h, w) if c == 1 else (h, w, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L" if c == 1 else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


async def load(
    url: str, clients: int, requests: int, seconds: float, request_kwargs
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker(index: int) -> None:
            nonlocal errors, sent
            while sent < requests and time.perf_counter() < deadline:
                sent += 1
                method, path, kwargs = request_kwargs(sent)
                started = time.perf_counter()
                response = await client.request(method, path, **kwargs)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "req/s": len(latencies) / wall,
        "p50 ms": 1000 * statistics.median(ordered),
        "p99 ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--encoder", choices=["torch", "onnx"], default="onnx")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--funnel", default="8,128")
    parser.add_argument("--shortlist", default="200")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    store = EmbeddingStore.open(args.store)
    items = len(store)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "repvae.cli",
            "serve",
            str(args.store),
            "--port",
            str(port),
            "--encoder",
            args.encoder,
        ],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the service did not start")
            time.sleep(0.2)
        image = png(store)
        rng = np.random.default_rng(0)
        ids = rng.integers(0, items, 100_000)
        kinds = {
            "embed": lambda i: (
                "POST",
                "/embed",
                {"params": {"dim": args.dim}, "files": {"image": ("q.png", image)}},
            ),
            f"search flat m={args.dim}": lambda i: (
                "GET",
                "/search",
                {"params": {"id": int(ids[i]), "dim": args.dim, "k": args.k}},
            ),
            f"search funnel {args.funnel} ({args.shortlist})": lambda i: (
                "GET",
                "/search",
                {
                    "params": {
                        "id": int(ids[i]),
                        "dim": args.dim,
                        "k": args.k,
                        "funnel": args.funnel,
                        "shortlist": args.shortlist,
                    }
                },
            ),
        }
        rows = []
        for name, request in kinds.items():
            for clients in args.clients:
                result = asyncio.run(load(url, clients, args.requests, args.seconds, request))
                rows.append(
                    {
                        "endpoint": name,
                        "clients": clients,
                        **{
                            k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()
                        },
                    }
                )
                print(rows[-1], flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"\nstore {args.store}: {items} items, encoder {args.encoder}, k = {args.k}; "
        f"{os.cpu_count()} cores shared by the service and the clients"
    )
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
