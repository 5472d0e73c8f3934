#!/usr/bin/env bash
# Reproduce the shipped l5_ttpc1 surrogate from scratch, on this machine.
#
#   bash benchmarks/train_shipped.sh [WORK]        (default WORK: data)
#
# 1. training data: 120 simulations of 5 s (600 simulated seconds), seed 1000;
# 2. held-out data: 20 simulations of 5 s, seed 2000 (no input in common);
# 3. the linear baseline and the surrogate (mh head, local input path of 64
#    bins, full loss), each for a fixed wall-clock budget on this machine;
# 4. held-out evaluation against the baseline, written into the model card;
# 5. the model copied into the package (lfp_surrogate/_data/models/l5_ttpc1).
#
# Every step resumes: an interrupted run continues where it stopped when the
# script is run again. Budgets and sizes can be changed with the variables
# below (environment overrides them).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-data}
N_TRAIN=${N_TRAIN:-120}
N_HELD_OUT=${N_HELD_OUT:-20}
DURATION=${DURATION:-5000}
MINUTES=${MINUTES:-30}
BASELINE_MINUTES=${BASELINE_MINUTES:-5}
LOCAL_KERNEL=${LOCAL_KERNEL:-64}
export LFP_SURROGATE_NO_PROGRESS=${LFP_SURROGATE_NO_PROGRESS:-1}

simulate() {  # simulate OUT N SEED
    local resume=()
    [ -f "$1/dataset.yaml" ] && resume=(--resume)
    lfp-surrogate simulate --cell l5_ttpc1 --n-sims "$2" --duration "$DURATION" \
        --seed "$3" --no-imem --out "$1" "${resume[@]}"
}

train() {  # train OUT ARCH MINUTES [extra options]
    local out=$1 arch=$2 minutes=$3
    shift 3
    if [ -f "$out/model.json" ]; then
        echo "$out: trained before"
        return
    fi
    local resume=()
    [ -f "$out/checkpoints/last.ckpt" ] && resume=(--resume)
    lfp-surrogate train --data "$WORK/train" --arch "$arch" --out "$out" \
        --max-minutes "$minutes" --max-epochs 1000 --window 1000 --batch-size 4 \
        --num-workers 1 --seed 0 \
        "${resume[@]}" "$@"
}

simulate "$WORK/train" "$N_TRAIN" 1000
simulate "$WORK/held_out" "$N_HELD_OUT" 2000
train "$WORK/models/linear" linear "$BASELINE_MINUTES"
train "$WORK/models/l5_ttpc1" mh "$MINUTES" --local-kernel "$LOCAL_KERNEL"
lfp-surrogate evaluate --model "$WORK/models/l5_ttpc1" --data "$WORK/held_out" \
    --baseline "$WORK/models/linear" --out "$WORK/models/l5_ttpc1/held_out.json" \
    --force
python benchmarks/ship_model.py "$WORK/models/l5_ttpc1" \
    "$WORK/models/l5_ttpc1/held_out.json" --name l5_ttpc1
