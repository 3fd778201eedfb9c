"""`shapes`: dSprites-like sprites with known generative factors, rendered in memory.

The factor grid is dSprites' (Matthey et al. 2017): shape (square, ellipse, heart) x 6 scales
in [0.5, 1] x 40 orientations x 32 x-positions x 32 y-positions, one white binary sprite
(0 or 255, no anti-aliasing, like dSprites' 0/1 images) on a black 64x64 canvas. Orientations
are 2*pi*k/40, k = 0..39, i.e. [0, 2*pi) without dSprites' duplicate 2*pi endpoint. As in
dSprites, orientation is not identifiable from the image alone for symmetric shapes: a square
looks the same after a quarter turn and an ellipse after a half turn; only the heart has no
rotational symmetry.

The full grid (737,280 images, 3 GB as uint8) does not fit comfortably in memory, so a seeded
uniform sample of distinct grid points is rendered instead; rendering is vectorised and takes a
few seconds, so nothing is cached on disk.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .core import Arrays

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
GRID_SIZE = math.prod(FACTOR_SIZES)  # 737,280
SCALES = torch.linspace(0.5, 1.0, 6)
ORIENTATIONS = torch.arange(40) * (2 * math.pi / 40)
POSITIONS = torch.linspace(0.0, 1.0, 32)

TRAIN_SIZE = 60_000
TEST_SIZE = 10_000
SEED = 0

SIZE = 64  # canvas side in pixels
# Geometry in canvas units (the canvas is [0, 1]^2). Every shape lies in the box |u|, |v| <= 1 of
# its own frame, which is HALF_SIDE * scale canvas units per unit, so at most sqrt(2) * HALF_SIDE
# = 0.177 from its centre at any rotation. Centres span [MARGIN, 1 - MARGIN] = [0.2, 0.8], so even
# the largest sprite at an extreme position keeps a black border of more than one pixel.
HALF_SIDE = 0.125  # the square at scale 1 is 16 pixels wide
MARGIN = 0.2
ELLIPSE_MINOR = 0.6  # semi-axes 1 (along u) and 0.6 (along v)
# The heart (x^2 + y^2 - 1)^3 <= x^2 y^3 spans x in +-1.1387, y in [-1, 1.2361]; this scales its
# width onto the unit box and centres its bounding box, with the lobes up and the point down.
_HEART_HALF_WIDTH = 1.1387
_HEART_SHIFT = 0.1180

# Pixels whose centre is within that radius of the sprite's centre: a window of 2 * half + 1
# pixels starting `half` left of the centre's pixel reaches at least half - 0.5 to either side.
WINDOW = 2 * math.ceil(math.sqrt(2) * HALF_SIDE * SIZE + 0.5) + 1  # 25


def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs(), v.abs()) <= 1


def _ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u.square() + (v / ELLIPSE_MINOR).square() <= 1


def _heart(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    x = u * _HEART_HALF_WIDTH
    y = v * _HEART_HALF_WIDTH + _HEART_SHIFT
    x2, y2 = x.square(), y.square()
    r = x2 + y2 - 1
    return r * r * r <= x2 * y2 * y


_INSIDE = (_square, _ellipse, _heart)  # indexed by the shape factor


def render(factors: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Images uint8 [N, 1, 64, 64] (0 or 255) for factor indices int64 [N, 5].

    Only a WINDOW x WINDOW patch around each sprite's centre can be white, so only that patch is
    computed (6.5x fewer pixels than the canvas): each pixel centre is mapped into the sprite's
    frame (u right, v up, rotated by the orientation, counter-clockwise as displayed, in units
    of the sprite's size) and tested against the shape's implicit inequality. pos_x moves the
    sprite right and pos_y moves it down (image row order).
    """
    images = torch.zeros((len(factors), 1, SIZE, SIZE), dtype=torch.uint8)
    offsets = torch.arange(WINDOW) - WINDOW // 2
    for start in range(0, len(factors), batch_size):
        batch = factors[start : start + batch_size]
        centre = (MARGIN + (1 - 2 * MARGIN) * POSITIONS[batch[:, 3:]]) * SIZE  # [B, 2] pixels
        cols, rows = (centre.floor().long().unsqueeze(2) + offsets).unbind(1)  # [B, WINDOW]
        dx = (cols + 0.5 - centre[:, :1]).unsqueeze(1)  # [B, 1, WINDOW]
        dy = (centre[:, 1:] - rows - 0.5).unsqueeze(2)  # [B, WINDOW, 1], up is positive
        unit = (HALF_SIDE * SIZE * SCALES[batch[:, 1]]).view(-1, 1, 1)
        angle = ORIENTATIONS[batch[:, 2]].view(-1, 1, 1)
        cos, sin = angle.cos() / unit, angle.sin() / unit
        u = cos * dx + sin * dy  # the pixel turned by -angle, so the sprite turns by +angle
        v = cos * dy - sin * dx
        inside = torch.empty(u.shape, dtype=torch.bool)
        for shape, test in enumerate(_INSIDE):
            mask = batch[:, 0] == shape
            inside[mask] = test(u[mask], v[mask])
        index = torch.arange(start, start + len(batch)).view(-1, 1, 1)
        images[:, 0][index, rows.unsqueeze(2), cols.unsqueeze(1)] = inside.to(torch.uint8) * 255
    return images


def sample_grid(count: int, seed: int, total: int = GRID_SIZE) -> np.ndarray:
    """`count` distinct indices into the flattened factor grid, uniformly at random.

    dSprites stores its images in this C-order grid, so the same indices pick the same factor
    combinations from the real file as from `shapes`.
    """
    return np.random.default_rng(seed).choice(total, count, replace=False)


def grid_factors(index: np.ndarray) -> np.ndarray:
    """Factor indices int64 [N, 5] of flat grid indices."""
    return np.stack(np.unravel_index(index, FACTOR_SIZES), axis=1).astype(np.int64)


def load_shapes(
    train_size: int = TRAIN_SIZE, test_size: int = TEST_SIZE, seed: int = SEED
) -> Arrays:
    """Render disjoint train and test sets of distinct random grid points.

    Labels are the shape (3 classes); factors are all five indices in FACTOR_NAMES order.
    """
    factors = grid_factors(sample_grid(train_size + test_size, seed))
    images = render(torch.from_numpy(factors)).numpy()
    labels = factors[:, 0].copy()
    return Arrays(
        train_images=images[:train_size],
        train_labels=labels[:train_size],
        test_images=images[train_size:],
        test_labels=labels[train_size:],
        class_names=SHAPES,
        train_factors=factors[:train_size],
        test_factors=factors[train_size:],
        factor_names=FACTOR_NAMES,
    )
