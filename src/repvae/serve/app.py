"""The embedding service: FastAPI over a store and an encoder (``repvae serve STORE``).

    GET  /                     a page: pick a stored image or upload one, choose m, see the
                               neighbours with their labels and the query time
    GET  /health, /version     liveness; what is served (store, run, sizes, metric, encoder)
    POST /embed?dim=m          an uploaded image's embedding cut to m
    GET  /items/{id}?dim=m     a stored embedding cut to m, with its label
    GET  /items/{id}/image     a stored image (PNG)
    GET  /search?id=&dim=&k=   neighbours of a stored item, flat at m or a funnel
    POST /search?dim=&k=       neighbours of an uploaded image
    POST /items                add uploaded images to the store (the bearer token, if set)

Bad input gets a 4xx JSON body ``{"detail": ..., "field": ...}`` naming the field: not an
image, wrong size or channels, m not an indexed size, k out of range, unknown id, a body over
the size limit (413). Endpoints are plain ``def`` (FastAPI runs them in its thread pool); the
store is read and appended under one lock, and FAISS is kept to one thread per call so that
concurrent requests do not oversubscribe the cores.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run
# time, and those that name objects local to ``create_app`` (the bearer scheme) must be real.
import io
import secrets
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from PIL import Image, UnidentifiedImageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repvae.export import Encoder
from repvae.serve import DEFAULT_MAX_BODY
from repvae.serve.page import PAGE
from repvae.store import EmbeddingStore, flat_search, funnel_search

MAX_K = 1000


class BadInput(Exception):
    """A request the service refuses: the status, the field, and what is wrong."""

    def __init__(self, status: int, field: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.field, self.detail = status, field, detail


@dataclass
class ServiceSettings:
    token: str | None = None  # bearer token for the endpoints that write (None: open)
    max_body: int = DEFAULT_MAX_BODY
    encoder_name: str = "torch"
    funnel: list[int] = field(default_factory=list)  # the page's default ladder
    shortlist: list[int] = field(default_factory=list)


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, by its Content-Length or, without
    one, by counting the bytes as they arrive (FastAPI sets no limit of its own)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BadInput(413, "body", f"request body over the {self.limit}-byte limit")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over the {self.limit}-byte limit", "field": "body"}, 413
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def _version() -> str:
    try:
        return version("repvae")
    except PackageNotFoundError:
        return "0.0.0+source"


def create_app(
    store: EmbeddingStore, encoder: Encoder, settings: ServiceSettings | None = None
) -> FastAPI:
    settings = settings or ServiceSettings()
    manifest = store.manifest
    lock = threading.RLock()
    channels, height, width = manifest.shape
    bearer = HTTPBearer(auto_error=False)
    app = FastAPI(
        title="repvae embedding service",
        version=_version(),
        description="Matryoshka embeddings cut to the size each client affords.",
    )
    app.add_middleware(BodyLimit, limit=settings.max_body)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, err: BadInput) -> JSONResponse:
        return JSONResponse({"detail": err.detail, "field": err.field}, err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        name = str(first["loc"][-1]) if first.get("loc") else "request"
        return JSONResponse({"detail": first.get("msg", "invalid"), "field": name}, 422)

    def check_dim(dim: int, name: str = "dim") -> int:
        if dim not in manifest.index_dims:
            raise BadInput(
                422, name, f"{dim} is not an indexed size; use one of {manifest.index_dims}"
            )
        return dim

    def check_k(k: int) -> int:
        top = min(MAX_K, len(store) - 1)
        if not 1 <= k <= top:
            raise BadInput(422, "k", f"k must be in 1..{top}, got {k}")
        return k

    def check_id(item: int) -> int:
        if not 0 <= item < len(store):
            raise BadInput(404, "id", f"no item {item}; ids run from 0 to {len(store) - 1}")
        return item

    def ladder(text: str | None, name: str) -> list[int]:
        if not text:
            return []
        try:
            values = [int(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise BadInput(422, name, f"expected comma-separated integers, got {text!r}") from None
        return values

    def read_image(upload: UploadFile, name: str = "image") -> np.ndarray:
        data = upload.file.read()
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError, ValueError):
            raise BadInput(
                422, name, f"{upload.filename or 'the upload'} is not an image"
            ) from None
        mode = "L" if channels == 1 else "RGB"
        if image.mode not in (mode, *(("1",) if channels == 1 else ("RGBA",))):
            raise BadInput(
                422,
                name,
                f"expected {channels} channel(s) ({mode}), got an image in mode {image.mode}",
            )
        if image.size != (width, height):
            raise BadInput(
                422, name, f"expected {width}x{height} pixels, got {image.size[0]}x{image.size[1]}"
            )
        array = np.asarray(image.convert(mode), dtype=np.uint8)
        return array[None] if channels == 1 else array.transpose(2, 0, 1)

    def neighbours(
        queries: np.ndarray,
        dim: int,
        k: int,
        funnel: str | None,
        shortlist: str | None,
        exclude: np.ndarray | None,
    ) -> dict[str, Any]:
        stages = ladder(funnel, "funnel")
        sizes = ladder(shortlist, "shortlist")
        with lock:
            started = time.perf_counter()
            if stages:
                for m in stages:
                    check_dim(m, "funnel")
                try:
                    found = funnel_search(store, queries, stages, sizes, k, exclude)
                except ValueError as err:
                    raise BadInput(422, "shortlist", str(err)) from None
            else:
                found = flat_search(store, queries, dim, k, exclude)
            seconds = time.perf_counter() - started
            labels = store.labels[found.ids[0]]
        return {
            "dim": stages[-1] if stages else dim,
            "funnel": stages or None,
            "shortlist": sizes or None,
            "k": k,
            "seconds": seconds,
            "multiply_adds": found.cost,
            "neighbours": [
                {"id": int(i), "label": int(y), "score": float(s)}
                for i, y, s in zip(found.ids[0], labels, found.scores[0], strict=True)
            ],
        }

    def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if settings.token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), settings.token.encode()):
            raise BadInput(401, "authorization", "a valid bearer token is needed to write")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "items": len(store)}

    @app.get("/version")
    def about() -> dict[str, Any]:
        return {
            "repvae": _version(),
            "store_format": manifest.format,
            "run": manifest.run,
            "items": len(store),
            "dim": manifest.dim,
            "dims": manifest.index_dims,
            "prefixes": manifest.prefixes,
            "metric": manifest.metric,
            "shape": manifest.shape,
            "class_names": manifest.class_names,
            "encoder": settings.encoder_name,
            "images": store.has_images(),
            "funnel": settings.funnel,
            "shortlist": settings.shortlist,
        }

    @app.post("/embed")
    def embed(image: Annotated[UploadFile, File()], dim: int = Query(...)) -> dict[str, Any]:
        check_dim(dim)
        vector = encoder(read_image(image)[None])[0]
        return {"dim": dim, "embedding": vector[:dim].tolist()}

    @app.get("/items/{item_id}")
    def item(item_id: int, dim: int = Query(...)) -> dict[str, Any]:
        check_dim(dim)
        with lock:
            vector, label = store.item(check_id(item_id))
        return {"id": item_id, "label": label, "dim": dim, "embedding": vector[:dim].tolist()}

    @app.get("/items/{item_id}/image", responses={200: {"content": {"image/png": {}}}})
    def item_image(item_id: int) -> Response:
        with lock:
            check_id(item_id)
            if not store.has_images():
                raise BadInput(404, "id", "this store was indexed without its images")
            pixels = store.image(item_id)
        mode = "L" if channels == 1 else "RGB"
        picture = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0), mode)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png")

    @app.get("/search")
    def search_item(
        id: int = Query(...),
        dim: int = Query(...),
        k: int = 10,
        funnel: str | None = None,
        shortlist: str | None = None,
    ) -> dict[str, Any]:
        check_dim(dim)
        check_k(k)
        with lock:
            vector, _ = store.item(check_id(id))
        result = neighbours(vector[None], dim, k, funnel, shortlist, np.array([id]))
        return {"query": {"id": id}, **result}

    @app.post("/search")
    def search_image(
        image: Annotated[UploadFile, File()],
        dim: int = Query(...),
        k: int = 10,
        funnel: str | None = None,
        shortlist: str | None = None,
    ) -> dict[str, Any]:
        check_dim(dim)
        check_k(k)
        vector = encoder(read_image(image)[None])
        return {
            "query": {"image": image.filename},
            **neighbours(vector, dim, k, funnel, shortlist, None),
        }

    @app.post("/items", dependencies=[Depends(authorised)])
    def add_items(
        images: Annotated[list[UploadFile], File()],
        labels: Annotated[str, Form()] = "",
    ) -> dict[str, Any]:
        pixels = np.stack([read_image(upload, "images") for upload in images])
        given = ladder(labels, "labels")
        if given and len(given) != len(images):
            raise BadInput(422, "labels", f"{len(given)} labels for {len(images)} images")
        values = np.array(given or [-1] * len(images), dtype=np.int64)
        vectors = encoder(pixels)
        with lock:
            ids = store.append(
                vectors,
                values,
                pixels if store.has_images() else None,
                {"uploaded": [u.filename for u in images]},
            )
        return {"ids": ids.tolist(), "items": len(store)}

    return app
