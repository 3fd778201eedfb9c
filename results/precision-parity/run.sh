set -e
cd "$(dirname "$0")/../.."   # the repository root
M="--dataset mnist --data-root ../shared/datasets --latent-dim 16 --epochs 3 --no-progress"
probe() {  # the run's MAP probes into RUN.probe.md, kept once complete (an interrupted one reruns)
  [ -s $1.probe.md ] || { repvae probe $1 --kind map --probes linear mlp > $1.probe.tmp && mv $1.probe.tmp $1.probe.md; }
}
C="--dataset folder:cifar10-jpeg.tar.gz --data-root ../shared/datasets --latent-dim 64 --architecture conv --epochs 3 --no-progress"
for p in 32-true auto; do
  [ -f ${OUT:-runs/parity}/mnist-$p/model.safetensors ] || repvae train --model vae $M --set train.precision=$p --out ${OUT:-runs/parity}/mnist-$p
  probe ${OUT:-runs/parity}/mnist-$p
done
# CIFAR-10: seeds 0 (folders cifar-P) and 1 to 5 (cifar-P-seedS), to bound the probe difference
for s in 0 1 2 3 4 5; do
  for p in 32-true auto; do
    R=${OUT:-runs/parity}/cifar-$p$([ $s = 0 ] || echo "-seed$s")
    [ -f $R/model.safetensors ] || repvae train --model vae $C --seed $s --set train.precision=$p --set model.likelihood=gaussian --out $R
    probe $R
  done
done
echo DONE
