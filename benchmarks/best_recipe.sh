#!/usr/bin/env bash
# The accuracy record: five bestnet models (affine + elastic augmentation, 30 epochs of one-cycle AdamW,
# label smoothing), each evaluated alone and with test-time augmentation, then the ensemble of all five.
#
#   bash benchmarks/best_recipe.sh            # SEEDS="0 1 2 3 4" EPOCHS=30 OUT=runs/best by default
#   SEEDS="0 1 2" EPOCHS=40 bash benchmarks/best_recipe.sh
#
# Time: about 3 minutes per epoch per model on a 2-core laptop CPU (bestnet trains at ~300 img/s there),
# i.e. ~1.5 h per model; seconds per epoch on a GPU. Several GPUs: run the seeds in parallel, one per GPU
# (CUDA_VISIBLE_DEVICES=i digitnet train ...), or one model on all of them with torchrun (README, "Scale").
set -euo pipefail
DIGITNET=${DIGITNET:-digitnet}
SEEDS=${SEEDS:-"0 1 2 3 4"}
EPOCHS=${EPOCHS:-30}
OUT=${OUT:-runs/best}

models=()
for seed in $SEEDS; do
  dir="$OUT/bestnet-seed$seed"
  # --val-size 5000 keeps a validation split for the calibration temperature and best-epoch selection;
  # the test set is never used for any choice.
  $DIGITNET train --arch bestnet --epochs "$EPOCHS" --seed "$seed" --augment strong --no-plots --out "$dir"
  $DIGITNET ensemble --models "$dir" --json > "$dir/test.json"
  $DIGITNET ensemble --models "$dir" --tta --json > "$dir/test-tta.json"
  models+=("$dir")
done

list=$(IFS=,; echo "${models[*]}")
$DIGITNET ensemble --models "$list"
$DIGITNET ensemble --models "$list" --tta
$DIGITNET ensemble --models "$list" --tta --json > "$OUT/ensemble-tta.json"
