# MNIST bf16 against fp32 at 15 epochs (seeds 0-1): does the probe gap of CIFAR-10 at 15 epochs
# show on MNIST too? Same command as run.sh's MNIST runs but for the epochs and seeds.
set -e
cd "$(dirname "$0")/../.."   # the repository root
OUT=${OUT:-runs/parity-15}
M="--dataset mnist --data-root ../shared/datasets --latent-dim 16 --epochs 15 --no-progress"
for s in 0 1; do
  for p in 32-true auto; do
    R=$OUT/mnist-$p$([ $s = 0 ] || echo "-seed$s")
    [ -f $R/model.safetensors ] || repvae train --model vae $M --seed $s --set train.precision=$p --out $R
    [ -s $R.probe.md ] || { repvae probe $R --kind map --probes linear mlp > $R.probe.tmp && mv $R.probe.tmp $R.probe.md; }
  done
done
python scripts/parity_table.py $OUT mnist
