#!/usr/bin/env bash
# Retrain every committed checkpoint with its default recipe (the recipes in cnndemo/catalog.py).
# Usage: bash scripts/train_all.sh [arch ...]   (default: all five, fastest first). Logs to runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
archs=("${@:-inception_net residual_net vgg11 resnet18 googlenet}")
for arch in ${archs[@]}; do
  for dataset in mnist fashion_mnist; do
    echo "=== $arch $dataset $(date +%T)"
    python -m cnndemo.train --arch "$arch" --dataset "$dataset" 2>&1 | tee "runs/${arch}_${dataset}.log"
  done
done
