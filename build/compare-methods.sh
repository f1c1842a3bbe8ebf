#!/usr/bin/env bash
# Pretrains every method for the same wall-clock budget and prints each demo's tables: linear probe at 1/10/100 % of
# the labels and kNN on the test split (with raw pixels and the random-init encoder), collapse signals and k-means
# clustering, views/s and peak memory. Runs one after another (this machine's speed drifts: compare within one run).
# Usage: [ENCODER=preset] build/compare-methods.sh [minutes per method] [--full] [methods…]
#   default: 2 minutes on the bundled sample, every self-supervised method; --full uses all of Fashion-MNIST
#   (Debian's dataset-fashion-mnist); ENCODER (e.g. vittiny, which mae, ibot and ijepa need) replaces the Small
#   encoder for every method. docs/methods.md holds runs of it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-2}
shift || true
full=()
if [ "${1:-}" = "--full" ]; then full=(--full); shift; fi
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(simclr moco nce triplet byol simsiam barlow vicreg rotation jigsaw)
dotnet build "$root/src/MLNet.Contrastive.Cli" -c Release -v q -nologo >/dev/null
for method in "${methods[@]}"; do
  echo "== $method, $minutes min ${full[*]}"
  dotnet "$root/src/MLNet.Contrastive.Cli/bin/Release/net10.0/mlnet-contrastive.dll" demo --method "$method" --minutes "$minutes" \
    ${ENCODER:+--encoder "$ENCODER"} --baseline-minutes 0 "${full[@]}" --out "$(mktemp -d)" | grep -E '│|Pretraining:|WARNING'
done
