#!/usr/bin/env bash
# Pretrains every method for the same wall-clock budget on the bundled Fashion-MNIST sample and prints each
# demo's table (linear probe and kNN on the 1,000 test images, with raw pixels and the random-init encoder).
# Usage: build/compare-methods.sh [minutes per method]   (docs/methods.md holds a run of it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-2}
dotnet build "$root/src/MLNet.Contrastive.Cli" -c Release -v q -nologo >/dev/null
for method in simclr rotation jigsaw triplet nce; do
  echo "== $method, $minutes min"
  dotnet "$root/src/MLNet.Contrastive.Cli/bin/Release/net10.0/mlnet-contrastive.dll" demo --method "$method" --minutes "$minutes" \
    | grep -E '│|Pretraining:'
done
