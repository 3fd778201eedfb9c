"""The service over real HTTP (uvicorn on loopback, an httpx client): every endpoint, and every
kind of bad input answered with a 4xx JSON body naming the field, never a 500."""

import io

import httpx
import numpy as np
import pytest
from PIL import Image


def png(width=8, height=8, mode="L", value=None) -> bytes:
    rng = np.random.default_rng(0)
    shape = (height, width) if mode == "L" else (height, width, 3)
    pixels = (
        rng.integers(0, 256, shape, dtype=np.uint8)
        if value is None
        else np.full(shape, value, np.uint8)
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def refused(response: httpx.Response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field, body
    return body["detail"]


def test_health_version_and_the_openapi_schema(client):
    assert client.get("/health").json()["status"] == "ok"
    about = client.get("/version").json()
    assert about["dims"] == [2, 4] and about["dim"] == 4 and about["items"] == 359  # digits test
    assert about["shape"] == [1, 8, 8] and about["images"] is True
    schema = client.get("/openapi.json").json()
    assert {"/embed", "/search", "/items", "/items/{item_id}", "/health"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_embed_cuts_the_embedding_to_m(client):
    full = client.post("/embed", params={"dim": 4}, files={"image": ("x.png", png())}).json()
    cut = client.post("/embed", params={"dim": 2}, files={"image": ("x.png", png())}).json()
    assert len(full["embedding"]) == 4 and cut["embedding"] == pytest.approx(full["embedding"][:2])


def test_stored_items_and_their_images(client):
    item = client.get("/items/7", params={"dim": 2}).json()
    assert item["id"] == 7 and len(item["embedding"]) == 2 and 0 <= item["label"] <= 9
    picture = client.get("/items/7/image")
    assert picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size == (8, 8)


def test_search_by_id_flat_and_funnel(client):
    flat = client.get("/search", params={"id": 3, "dim": 4, "k": 5}).json()
    assert len(flat["neighbours"]) == 5 and flat["funnel"] is None
    assert 3 not in [n["id"] for n in flat["neighbours"]]  # the query itself is left out
    scores = [n["score"] for n in flat["neighbours"]]
    assert scores == sorted(scores, reverse=True)
    funnel = client.get(
        "/search", params={"id": 3, "dim": 4, "k": 5, "funnel": "2,4", "shortlist": "100"}
    ).json()
    assert funnel["funnel"] == [2, 4] and funnel["multiply_adds"] < flat["multiply_adds"]
    assert funnel["seconds"] >= 0


def test_search_by_an_uploaded_image(client):
    found = client.post(
        "/search", params={"dim": 2, "k": 3}, files={"image": ("q.png", png())}
    ).json()
    assert len(found["neighbours"]) == 3 and found["query"] == {"image": "q.png"}


def test_bad_input_names_the_field(client):
    image = {"image": ("x.png", png())}
    assert "not an image" in refused(
        client.post("/embed", params={"dim": 4}, files={"image": ("x.png", b"GIF89a-nonsense")}),
        422,
        "image",
    )
    assert "8x8" in refused(
        client.post("/embed", params={"dim": 4}, files={"image": ("x.png", png(9, 8))}),
        422,
        "image",
    )
    assert "channel" in refused(
        client.post("/embed", params={"dim": 4}, files={"image": ("x.png", png(mode="RGB"))}),
        422,
        "image",
    )
    assert "not an indexed size" in refused(
        client.post("/embed", params={"dim": 3}, files=image), 422, "dim"
    )
    refused(client.get("/search", params={"id": 1, "dim": 3}), 422, "dim")
    refused(client.get("/search", params={"id": 1, "dim": 4, "k": 0}), 422, "k")
    refused(client.get("/search", params={"id": 1, "dim": 4, "k": 100000}), 422, "k")
    refused(client.get("/search", params={"id": 359, "dim": 4}), 404, "id")
    refused(client.get("/search", params={"id": -1, "dim": 4}), 404, "id")
    refused(client.get("/items/99999", params={"dim": 2}), 404, "id")
    refused(client.get("/items/99999/image"), 404, "id")
    refused(client.get("/search", params={"id": "seven", "dim": 4}), 422, "id")
    refused(client.get("/search", params={"id": 1}), 422, "dim")
    refused(client.get("/search", params={"id": 1, "dim": 4, "funnel": "2,x"}), 422, "funnel")
    refused(client.get("/search", params={"id": 1, "dim": 4, "funnel": "2,3"}), 422, "funnel")
    refused(
        client.get("/search", params={"id": 1, "dim": 4, "funnel": "2,4", "shortlist": "3"}),
        422,
        "shortlist",
    )
    refused(client.post("/search", params={"dim": 4}), 422, "image")
    too_big = {"image": ("big.png", b"\0" * 300_000)}
    assert "limit" in refused(client.post("/embed", params={"dim": 4}, files=too_big), 413, "body")


def test_writing_needs_the_token_and_adds_items(client, token):
    files = [("images", ("a.png", png(value=0))), ("images", ("b.png", png(value=255)))]
    refused(client.post("/items", files=files, data={"labels": "1,2"}), 401, "authorization")
    wrong = {"Authorization": "Bearer nope"}
    refused(
        client.post("/items", files=files, data={"labels": "1,2"}, headers=wrong),
        401,
        "authorization",
    )
    auth = {"Authorization": f"Bearer {token}"}
    refused(client.post("/items", files=files, data={"labels": "1"}, headers=auth), 422, "labels")
    added = client.post("/items", files=files, data={"labels": "1,2"}, headers=auth).json()
    assert added["ids"] == [359, 360] and added["items"] == 361
    assert client.get("/items/360", params={"dim": 4}).json()["label"] == 2
    found = client.get("/search", params={"id": 359, "dim": 4, "k": 360}).json()
    assert 360 in [n["id"] for n in found["neighbours"]]  # the new items are searchable


def test_nothing_is_answered_with_a_server_error(client, token):
    for method, url, kwargs in [
        ("get", "/search", {"params": {"id": "1e99", "dim": "x"}}),
        ("post", "/embed", {"params": {"dim": 4}, "content": b"not multipart"}),
        ("post", "/items", {"headers": {"Authorization": f"Bearer {token}"}}),
        ("get", "/items/1", {"params": {"dim": "99999999999999999999"}}),
    ]:
        assert getattr(client, method)(url, **kwargs).status_code < 500
