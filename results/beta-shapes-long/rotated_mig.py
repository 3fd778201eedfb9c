"""MIG of each run against the shapes factors, and against the position factors turned 45 degrees.

The traversals of beta = 16 move the sprite along the two diagonals. MIG (like DCI and SAP)
scores a code against the factors' own axes, so a code that separates x + y from x - y scores as
entangled in x and y. This measures how much of the low MIG that explains: the same MIG, on the
same 10,000 training points as `repvae evaluate --only disentanglement`, with (pos_x, pos_y)
replaced by (pos_x + pos_y, pos_x - pos_y).

    python results/beta-shapes-long/rotated_mig.py /work/runs/beta-shapes-long/runs/*
"""

import sys

import numpy as np

from repvae.evaluate.disentanglement import mig
from repvae.represent import encode
from repvae.run import load

for path in sys.argv[1:]:
    run = load(path)
    data = run.config.data.load()
    split = data.train
    mean, _ = encode(run.model, split.images)  # the MAP codes `--only disentanglement` uses
    order = np.random.default_rng(0).permutation(len(mean))[:10_000]
    codes, factors = mean.numpy()[order], split.factors.numpy()[order]
    x, y = factors[:, 3], factors[:, 4]
    turned = np.column_stack([factors[:, :3], x + y, x - y + 31])
    axes, diagonal = mig(codes, factors), mig(codes, turned)
    print(
        f"{run.dir.name}: MIG {axes.score:.3f} (x {axes.per_factor[3]:.3f}, y "
        f"{axes.per_factor[4]:.3f}); with x+y, x-y: {diagonal.score:.3f} (x+y "
        f"{diagonal.per_factor[3]:.3f}, x-y {diagonal.per_factor[4]:.3f})"
    )
