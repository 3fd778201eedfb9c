# The issue-23 families side by side (results/families-mnist16/README.md).
# MNIST, latent 16, 5 epochs, batch 128, Adam 1e-3, the default precision, seed 0; MAP probes
# (linear, MLP) under the split protocol. The VQ-VAE codebook ablation and the multimodal models
# (PolyMNIST with 3 modalities) use the mlp networks (see the README).
# Run from anywhere: OUT=/somewhere bash results/families-mnist16/run.sh (default runs/families-mnist16);
# finished runs and probes are kept, so an interrupted run.sh resumes.
set -e
cd "$(dirname "$0")/../.."   # the repository root
OUT=${OUT:-runs/families-mnist16}
HERE=results/families-mnist16
MNIST="--dataset mnist --data-root ../shared/datasets --latent-dim 16 --no-progress"
POLY="--dataset polymnist-3 --data-root ../shared/datasets --latent-dim 16 --no-progress"
SMALL="--set train.train_subset=10000"
train() {  # name, then repvae train arguments
  [ -f "$OUT/$1/summary.json" ] || repvae train --out "$OUT/$1" "${@:2}"
}
probe() {  # name, then probe arguments
  [ -f "$OUT/$1/probes.json" ] || repvae probe "$OUT/$1" "${@:2}" --probes linear mlp --protocol split
}
# 1. the table: one budget
train vae --model vae $MNIST --epochs 5
train cvae --model cvae $MNIST --epochs 5
train vqvae --model vqvae $MNIST --epochs 5
train hvae --model hvae $MNIST --epochs 5
train hvae-free-bits --model hvae-free-bits $MNIST --epochs 5
probe vae --kind map
probe cvae --kind map
probe vqvae --kind map codes
probe hvae --layer 1 2 all
probe hvae-free-bits --layer 1 2 all
# 2. VQ-VAE codebook: EMA updates and dead-code restarts each switched off (10,000 images, 2 epochs)
train vq-default --model vqvae $MNIST --epochs 2 $SMALL
train vq-no-ema --model vqvae $MNIST --epochs 2 $SMALL --set model.vqvae.ema=false
train vq-no-reset --model vqvae $MNIST --epochs 2 $SMALL --set model.vqvae.dead_code_threshold=0
# 3. multimodal: the three fusions on PolyMNIST-3 (all 54,000 training images, 5 epochs, the mlp
#    networks: a quarter of the conv networks' cost per step, which lets the full set fit the budget)
for m in mvae-poe mmvae mopoe; do
  train $m --model $m $POLY --epochs 5 --architecture mlp
  probe $m --kind map m1 m2 m3
  [ -f "$OUT/$m/evaluation/coherence.json" ] || repvae evaluate "$OUT/$m" --only coherence pictures
done
# 4. figures and tables
python scripts/vq_figure.py "$OUT/vqvae" $HERE/vqvae_samples.png
python scripts/hierarchical_kl.py $HERE/hierarchical_kl.png "plain=$OUT/hvae" "free bits 0.1=$OUT/hvae-free-bits"
cp "$OUT/mopoe/evaluation/cross_generation.png" $HERE/mopoe_cross_generation.png
python scripts/families_table.py "$OUT" > $HERE/table.md
echo DONE
