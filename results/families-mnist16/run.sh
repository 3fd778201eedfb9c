# The issue-23 families side by side: MNIST, latent 16, one budget (5 epochs, batch 128, Adam
# 1e-3, the default precision), seed 0, MAP linear and MLP probes under the split protocol.
# Run from anywhere: OUT=/somewhere bash results/families-mnist16/run.sh (default runs/families-mnist16).
set -e
cd "$(dirname "$0")/../.."   # the repository root
OUT=${OUT:-runs/families-mnist16}
D="--dataset mnist --data-root ../shared/datasets --latent-dim 16 --epochs 5 --no-progress"
train() {  # name, then repvae train arguments; a finished run is kept
  [ -f "$OUT/$1/model.safetensors" ] || repvae train $D --out "$OUT/$1" "${@:2}"
}
probe() {  # name, then kinds
  [ -f "$OUT/$1/probes.json" ] || repvae probe "$OUT/$1" --kind "${@:2}" --probes linear mlp --protocol split
}
train vae --model vae
train cvae --model cvae
train vqvae --model vqvae
# VQ-VAE codebook ablation: EMA updates and dead-code restarts each switched off
train vqvae-no-ema --model vqvae --set model.vqvae.ema=false
train vqvae-no-reset --model vqvae --set model.vqvae.dead_code_threshold=0
train vqvae-neither --model vqvae --set model.vqvae.ema=false --set model.vqvae.dead_code_threshold=0
probe vae map
probe cvae map
probe vqvae map codes
python scripts/vq_figure.py "$OUT/vqvae" results/families-mnist16/vqvae_samples.png
python scripts/families_table.py "$OUT" > results/families-mnist16/table.md
echo DONE
