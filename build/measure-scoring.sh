#!/usr/bin/env bash
# Pretrains the demo encoder for 2 minutes on the bundled sample, then measures scoring throughput and parity
# (ML.NET stage vs ImageEmbedder vs TorchSharp) on the sample's 1,000 test images. Usage: build/measure-scoring.sh [minutes]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
sample="$root/src/MLNet.Contrastive.Cli/Sample"
dotnet build "$root/MLNet.Contrastive.sln" -c Release -v q -nologo
dotnet "$root/src/MLNet.Contrastive.Cli/bin/Release/net10.0/mlnet-contrastive.dll" pretrain \
  --data "$sample/train-images-idx3-ubyte.gz" --minutes "${1:-2}" --batch-size 256 --out "$run"
dotnet "$root/build/ScoringBenchmark/bin/Release/net10.0/ScoringBenchmark.dll" "$run" "$sample/t10k-images-idx3-ubyte.gz" 1000
