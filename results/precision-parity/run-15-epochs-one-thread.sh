# CIFAR-10 bf16 against fp32 at 15 epochs over seeds 0-29, every run on ONE CPU thread, two runs
# at a time (one per core). One thread for both precisions because the thread count alone
# changes fp32's results (the order of floating-point sums): run-15-epochs.sh's two-thread fp32
# runs against these one-thread ones is that control. About 7 minutes a seed here (two runs side
# by side), 3.5 hours in all on two cores; LAST_SEED=10 gives the first, eleven-seed table. 30
# seeds were chosen before the runs, from the eleven seeds' spread, as what the equivalence test
# needs (the paired differences' sample std 0.54 points / 0.99 %: 1.70 * sd / sqrt(30) inside
# the margins around those means).
#   OUT=runs/parity-15-one-thread bash results/precision-parity/run-15-epochs-one-thread.sh
set -e
cd "$(dirname "$0")/../.."   # the repository root
OUT=${OUT:-runs/parity-15-one-thread}
LAST_SEED=${LAST_SEED:-29}
mkdir -p "$OUT"
export OUT OMP_NUM_THREADS=1
one_run() {  # SEED PRECISION
  C="--dataset folder:cifar10-jpeg.tar.gz --data-root ../shared/datasets --latent-dim 64 --architecture conv --epochs 15 --no-progress"
  R=$OUT/cifar-$2$([ "$1" = 0 ] || echo "-seed$1")
  [ -f "$R/model.safetensors" ] || repvae train --model vae $C --seed "$1" --set train.precision="$2" --set model.likelihood=gaussian --out "$R" > "$R.log" 2>&1
  [ -s "$R.probe.md" ] || { repvae probe "$R" --kind map --probes linear mlp > "$R.probe.tmp" && mv "$R.probe.tmp" "$R.probe.md"; }
}
export -f one_run
for s in $(seq 0 "$LAST_SEED"); do for p in 32-true auto; do echo "$s $p"; done; done | xargs -P 2 -L 1 bash -c 'one_run "$0" "$1"'
python scripts/parity_table.py "$OUT"
