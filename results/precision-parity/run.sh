set -e
cd "$(dirname "$0")/../.."   # the repository root
M="--dataset mnist --data-root ../shared/datasets --latent-dim 16 --epochs 3 --no-progress"
C="--dataset folder:cifar10-jpeg.tar.gz --data-root ../shared/datasets --latent-dim 64 --architecture conv --epochs 3 --no-progress"
for p in 32-true auto; do
  [ -f ${OUT:-runs/parity}/mnist-$p/model.safetensors ] || repvae train --model vae $M --set train.precision=$p --out ${OUT:-runs/parity}/mnist-$p
  repvae probe ${OUT:-runs/parity}/mnist-$p --kind map --probes linear mlp > ${OUT:-runs/parity}/mnist-$p.probe.md
done
for p in 32-true auto; do
  [ -f ${OUT:-runs/parity}/cifar-$p/model.safetensors ] || repvae train --model vae $C --set train.precision=$p --set model.likelihood=gaussian --out ${OUT:-runs/parity}/cifar-$p
  repvae probe ${OUT:-runs/parity}/cifar-$p --kind map --probes linear mlp > ${OUT:-runs/parity}/cifar-$p.probe.md
done
echo DONE
