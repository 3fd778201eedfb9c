"""The embedding service (``repvae serve``): FastAPI over a store and an encoder, in ``app``
(FastAPI and uvicorn are the optional extra ``repvae[serve]``)."""

DEFAULT_MAX_BODY = 8 * 1024 * 1024  # bytes per request
