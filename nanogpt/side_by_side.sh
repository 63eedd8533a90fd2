#!/bin/bash
# nanoGPT's own CPU recipe and our sprint config, one after the other on the same (quiet) machine, each timed
# from launch to exit (wall-clock, interpreter start-up included). NANOGPT: a checkout of karpathy/nanoGPT whose
# data/shakespeare_char/prepare.py has been run (copy tiny Shakespeare's input.txt there first: it then needs no
# network). Writes nanogpt/results/side_by_side.txt.
#     NANOGPT=/path/to/nanoGPT bash nanogpt/side_by_side.sh
set -euo pipefail
: "${NANOGPT:?set NANOGPT to a nanoGPT checkout (see the comment at the top)}"
PY=${PY:-$PWD/.venv/bin/python}
out=nanogpt/results/side_by_side.txt
log=$(mktemp -d)
timed() {  # timed NAME LOG COMMAND...: run it, print "NAME: S s wall" and the lines with the losses
  local name=$1 file=$2; shift 2
  local t0; t0=$(date +%s.%N)
  "$@" > "$file" 2>&1
  echo "$name: $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s wall"
}
{
  echo "# $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs) model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, nanoGPT at $(git -C "$NANOGPT" rev-parse --short HEAD)"
  (cd "$NANOGPT" && timed "nanoGPT CPU recipe (fp32, torch's default threads)" "$log/nanogpt.log" "$PY" train.py \
    config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20 --log_interval=1 \
    --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 \
    --lr_decay_iters=2000 --dropout=0.0 --out_dir="$log/out")
  grep '^step' "$log/nanogpt.log" | tail -n 1
  timed "ours, configs/sprint.py (default threads)" "$log/ours.log" "$PY" -m nanogpt.train \
    --config=nanogpt/configs/sprint.py --run=sprint --group=side-by-side --progress=false --resume=false
  grep -E 'iter +[0-9]+:' "$log/ours.log" | tail -n 1
} | tee "$out"
