"""Vectorised uint8 image transforms applied once at load time."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Chunking bounds the float32 temporaries: upscaling 73k SVHN images at once would need GBs.
_CHUNK = 2048


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """RGB [N, 3, H, W] -> [N, 1, H, W] with PIL's exact integer ITU-R 601 formula.

    Matching PIL bit for bit means a folder decoded with PIL's convert("L") and an array
    dataset converted here give identical pixels.
    """
    if images.shape[1] == 1:
        return images
    out = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start : start + _CHUNK].to(torch.int32)
        luma = chunk[:, 0] * 19595 + chunk[:, 1] * 38470 + chunk[:, 2] * 7471 + 32768
        out[start : start + _CHUNK, 0] = (luma >> 16).to(torch.uint8)
    return out


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize [N, C, H, W] uint8 images to size x size (bilinear, antialiased like PIL)."""
    if tuple(images.shape[2:]) == (size, size):
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start : start + _CHUNK].to(torch.float32)
        scaled = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        out[start : start + _CHUNK] = scaled.round_().clamp_(0, 255).to(torch.uint8)
    return out
