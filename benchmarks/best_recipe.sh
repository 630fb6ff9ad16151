#!/usr/bin/env bash
# The accuracy record: several models trained with affine + elastic augmentation (`--augment strong`),
# one-cycle schedule and label smoothing, then the ensemble of all of them, with and without test-time
# augmentation. The two ensemble JSONs also hold each member's own accuracy, so members are not evaluated apart.
#
#   bash benchmarks/best_recipe.sh                                   # GPU: 5 × bestnet, 30 epochs each
#   ARCH=fastnet WIDTH=24 EPOCHS=15 bash benchmarks/best_recipe.sh   # the 2-core-CPU variant (~9 min a model)
#   SEEDS="0 1 2" EPOCHS=40 bash benchmarks/best_recipe.sh
#
# bestnet trains at ~300 img/s on a 2-core CPU (~3 min per epoch, ~1.5 h per model) and in seconds per epoch
# on a GPU. Several GPUs: run the seeds in parallel, one per GPU (CUDA_VISIBLE_DEVICES=i digitnet train ...),
# or one model on all of them with torchrun (README, "Training on several GPUs or machines").
set -euo pipefail
DIGITNET=${DIGITNET:-digitnet}
ARCH=${ARCH:-bestnet}
WIDTH=${WIDTH:-}
SEEDS=${SEEDS:-"0 1 2 3 4"}
EPOCHS=${EPOCHS:-30}
OUT=${OUT:-runs/best-$ARCH${WIDTH:+-w$WIDTH}}

models=()
for seed in $SEEDS; do
  dir="$OUT/seed$seed"
  if [ ! -f "$dir/model.json" ]; then  # finished members are kept: re-running the script only adds what is missing
    # --val-size 5000 keeps a validation split for the calibration temperature; the test set is never used for
    # any choice.
    $DIGITNET train --arch "$ARCH" ${WIDTH:+--width "$WIDTH"} --epochs "$EPOCHS" --seed "$seed" --augment strong \
      --no-plots --quiet --out "$dir"
  fi
  models+=("$dir")
done

list=$(IFS=,; echo "${models[*]}")
$DIGITNET ensemble --models "$list" --json > "$OUT/ensemble.json"
$DIGITNET ensemble --models "$list" --tta --json > "$OUT/ensemble-tta.json"
# The summary comes from the JSON just written: re-running the TTA ensemble only to print a table costs minutes.
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
plain, tta = (json.load(open(f"{out}/{name}.json")) for name in ("ensemble", "ensemble-tta"))
for member, member_tta in zip(plain["members"], tta["members"], strict=True):
    print(f"{member['model']}: {member['accuracy']:.2%}, with TTA {member_tta['accuracy']:.2%}")
print(f"ensemble of {len(plain['members'])}: {plain['accuracy']:.2%}, with TTA {tta['accuracy']:.2%} "
      f"({tta['errors']} errors of {tta['num_samples']})")
PY
