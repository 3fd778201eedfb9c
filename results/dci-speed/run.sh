#!/usr/bin/env bash
# DCI with scikit-learn's GradientBoostingClassifier against the LightGBM backend, on the codes
# of a short beta-VAE run on `shapes` (the measurement in README.md). From the repository root;
# nothing else should run on the machine while it measures.
set -euo pipefail
RUNS=${RUNS:-/work/runs/dci-speed}
mkdir -p "$RUNS"
# beta = 4, latent 10, the beta_shapes study's network (conv, hidden 256, 64x64), one epoch of
# 30,000 images at batch 64 (5 minutes on 2 cores shared with another job)
repvae train --dataset shapes --model beta-vae --beta 4 --latent-dim 10 --architecture conv \
    --set model.hidden=256 --epochs 1 --batch-size 64 --lr 0.0005 \
    --set train.train_subset=30000 --no-progress --out "$RUNS/beta4"
# disentanglement_lib's 10,000 train / 5,000 test points; map codes (sample: --kinds sample)
# what was measured (README.md): 2,000 / 1,000 points, then the lightgbm backend alone at 10,000 / 5,000
for kind in map; do
    python benchmarks/dci_speed.py "$RUNS/beta4" --kinds "$kind" --n-train 2000 --n-test 1000 \
        --json "results/dci-speed/beta4-$kind-2000.json" | tee "results/dci-speed/beta4-$kind-2000.txt"
done
