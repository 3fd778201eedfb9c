# CIFAR-10 bf16 against fp32 at 15 epochs (seeds 0-2): is the validation loss at parity once the
# runs have flattened? Same command as run.sh's CIFAR-10 runs but for the epochs.
set -e
cd "$(dirname "$0")/../.."   # the repository root
OUT=${OUT:-runs/parity-15}
C="--dataset folder:cifar10-jpeg.tar.gz --data-root ../shared/datasets --latent-dim 64 --architecture conv --epochs 15 --no-progress"
for s in 0 1 2; do
  for p in 32-true auto; do
    R=$OUT/cifar-$p$([ $s = 0 ] || echo "-seed$s")
    [ -f $R/model.safetensors ] || repvae train --model vae $C --seed $s --set train.precision=$p --set model.likelihood=gaussian --out $R
    [ -s $R.probe.md ] || { repvae probe $R --kind map --probes linear mlp > $R.probe.tmp && mv $R.probe.tmp $R.probe.md; }
  done
done
python scripts/parity_table.py $OUT
