#!/usr/bin/env bash
# The same job on two silos whose membership, state and reminders are in Redis, then in PostgreSQL (Orleans' ADO.NET
# providers), in interleaved rounds: a fresh cluster (and, for PostgreSQL, the schema created by the first silo) per run.
# Both servers are throw-away, on loopback, keeping nothing on disk that a test needs (Redis without saves, PostgreSQL
# with fsync off). Prints the `submit --wait` line (the job's own clock) of each run.
# Usage: [SHARD_SIZE=256] build/cluster-store-bench.sh IMAGE_FOLDER ENCODER_ONNX [ROUNDS]
#   (needs redis-server and Debian's postgresql; as root it runs PostgreSQL as the postgres user; build -c Release first)
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=$(realpath "$1"); MODEL=$(realpath "$2"); ROUNDS=${3:-2}
CLI=src/MLNet.Contrastive.Cli/bin/Release/net10.0/mlnet-contrastive
PG=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d); chmod 777 "$WORK"; PORT=$((20000 + RANDOM % 10000)); PGPORT=$((PORT + 1))
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
redis-server --port $PORT --bind 127.0.0.1 --save "" --appendonly no > "$WORK/redis.log" 2>&1 & RPID=$!
as_postgres "$PG/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-sync > "$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; exit 1; }
as_postgres "$PG/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w -o "-k $WORK -p $PGPORT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start > /dev/null
trap 'kill $RPID 2>/dev/null; as_postgres "$PG/pg_ctl" -D "$WORK/pg" -m fast -w stop > /dev/null; rm -rf "$WORK"' EXIT
sleep 1
run() { # $1 = redis|postgres, $2 = round
  local id=bench-$1-$2-$RANDOM pids=() store
  if [ "$1" = redis ]; then store=(--redis 127.0.0.1:$PORT)
  else
    "$PG/psql" -h 127.0.0.1 -p $PGPORT -U postgres -qc "CREATE DATABASE \"$id\"" postgres
    store=(--postgres "Host=127.0.0.1;Port=$PGPORT;Username=postgres;Database=$id")
  fi
  for s in 1 2; do
    taskset -c $((s-1)) $CLI cluster silo "${store[@]}" --cluster-id $id --port $((PORT+10*s)) --gateway-port $((PORT+10*s+1)) \
      --threads 1 > "$WORK/silo$s.log" 2>&1 & pids+=($!)
  done
  sleep 10
  rm -rf "$WORK/out"
  timeout 900 $CLI cluster submit "${store[@]}" --cluster-id $id --model "$MODEL" --data "$DATA" --out "$WORK/out" --shard-size ${SHARD_SIZE:-256} --wait |
    tail -1 | sed "s/^/round $2, $1: /"
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null
}
for round in $(seq 1 "$ROUNDS"); do run redis $round; run postgres $round; done
