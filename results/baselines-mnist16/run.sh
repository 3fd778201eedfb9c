set -e
cd "$(dirname "$0")/../.."   # the repository root
D="--dataset mnist --data-root ../shared/datasets --latent-dim 16 --no-progress"
for m in vae ae; do
  [ -f ${OUT:-runs/baselines-mnist16}/$m/model.safetensors ] || repvae train --model $m $D --epochs 10 --out ${OUT:-runs/baselines-mnist16}/$m
done
[ -f ${OUT:-runs/baselines-mnist16}/ppca/model.safetensors ] || repvae train --model ppca $D --out ${OUT:-runs/baselines-mnist16}/ppca
for m in vae ae ppca; do
  repvae probe ${OUT:-runs/baselines-mnist16}/$m --kind map --probes linear mlp --protocol split > ${OUT:-runs/baselines-mnist16}/$m.probe.md
done
echo DONE
