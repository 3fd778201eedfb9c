"""A VQ-VAE's code-prior samples next to its reconstructions, in one picture.

    python scripts/vq_figure.py RUN OUT.png [--n 10] [--seed 0]

Rows: test images, their reconstructions (nearest codes decoded), then two rows of images
decoded from code maps drawn from the PixelCNN prior. Works for any run whose family generates.
"""

from __future__ import annotations

import argparse

import torch

from repvae.plots.figures import save_figure
from repvae.plots.pictures import image_grid
from repvae.run import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=10, help="images per row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run = load(args.run, device="cpu")
    model = run.model.eval()
    images = run.config.data.load().test.images[: args.n]
    with torch.no_grad():
        generator = torch.Generator().manual_seed(args.seed)
        rows = [
            model.preprocess(images),
            model.reconstruct(images),
            model.sample(2 * args.n, generator=generator),
        ]
    figure = image_grid(
        torch.cat(rows),
        args.n,
        row_labels=["test image", "reconstruction", "prior sample", "prior sample"],
        title=f"{run.config.model.family}: reconstructions and samples from the prior",
    )
    print(save_figure(figure, args.out))


if __name__ == "__main__":
    main()
