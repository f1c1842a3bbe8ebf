#!/usr/bin/env bash
# Throughput of the cluster job against the single process, in interleaved rounds on the same images and encoder:
# 1 silo (1 thread, core 0), the single process (1 ONNX Runtime thread, core 0; it also checks the last cluster output:
# rows = images, no duplicates, none missing, max |difference|), 2 silos (1 thread each, cores 0 and 1).
# Usage: [SHARDS_PER_SILO=2] build/cluster-bench.sh IMAGE_FOLDER ENCODER_ONNX [ROUNDS]   (needs redis-server and taskset; build -c Release first)
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=$(realpath "$1"); MODEL=$(realpath "$2"); ROUNDS=${3:-2}
CLI=src/MLNet.Contrastive.Cli/bin/Release/net10.0/mlnet-contrastive
WORK=$(mktemp -d); PORT=$((20000 + RANDOM % 10000))
redis-server --port $PORT --bind 127.0.0.1 --save "" --appendonly no > "$WORK/redis.log" 2>&1 & RPID=$!
trap 'kill $RPID 2>/dev/null; rm -rf "$WORK"' EXIT
sleep 1
cluster() { # $1 = silos, $2 = round
  local id=bench-$1-$2-$RANDOM pids=()
  for s in $(seq 1 "$1"); do
    taskset -c $((s-1)) $CLI cluster silo --redis 127.0.0.1:$PORT --cluster-id $id --port $((PORT+10*s)) --gateway-port $((PORT+10*s+1)) \
      --threads 1 > "$WORK/silo$s.log" 2>&1 & pids+=($!)
  done
  sleep 10
  rm -rf "$WORK/out"
  timeout 900 $CLI cluster submit --redis 127.0.0.1:$PORT --cluster-id $id --model "$MODEL" --data "$DATA" --out "$WORK/out" --shards-per-silo ${SHARDS_PER_SILO:-2} --wait |
    tail -1 | sed "s/^/round $2, $1 silo(s): /"
  # Each silo's scoring thread: seconds busy, from the shards' log lines.
  for s in $(seq 1 "$1"); do
    grep -o "scoring [0-9.]* s" "$WORK/silo$s.log" | awk -v s=$s -v r=$2 '{ t += $2; n++ } END { printf "round %d, silo %d: %d shards, scoring thread busy %.1f s\n", r, s, n, t }'
  done
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null
}
single() {
  taskset -c 0 timeout 900 dotnet run build/cluster-check.cs -- "$WORK/out" "$DATA" "$MODEL" 1 2>&1 | tail -2 | sed "s/^/round $1, /"
}
for round in $(seq 1 "$ROUNDS"); do cluster 1 $round; single $round; cluster 2 $round; done
