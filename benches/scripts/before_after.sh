#!/usr/bin/env bash
# Two builds of fathom against DiskANN in one run, interleaved (a change
# that must not move the speed: measure both on the same machine minutes
# apart, the peer between them).
#
#   benches/scripts/before_after.sh SET BEFORE_BIN AFTER_BIN OUT_DIR [ROUNDS]
#
# SET names $DATA/SET.base.fbin, SET.queries.fbin and SET.gt.ibin (made by
# benches/run.sh's glove / minilm steps). Each binary builds its own index
# (their bytes are compared, file by file: a refactor writes the same
# index); then ROUNDS
# rounds of: before's grid, after's grid, DiskANN's L sweep (PY: a venv
# with diskannpy-rust, see benches/run.sh). Rows go to OUT_DIR as JSON
# lines; benches/scripts/before_after.py turns them into ratios.
set -euo pipefail
set_name=$1 before=$2 after=$3 out=$4 rounds=${5:-3}
DATA=${DATA:-/work/bench-data} PY=${PY:-python3} LIMIT=${LIMIT:-2000}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
base=$DATA/$set_name.base.fbin queries=$DATA/$set_name.queries.fbin gt=$DATA/$set_name.gt.ibin
[ -f "$gt" ] || "$after" gt --base "$base" --queries "$queries" --k 100 --metric l2 --out "$gt"
for who in before after; do
  bin=${!who}
  rm -rf "$DATA/$set_name-$who.idx"
  "$bin" build --input "$base" --metric l2 --out "$DATA/$set_name-$who.idx" --json --quiet > "$out/$set_name-$who-build.json"
done
same=identical
for f in "$DATA/$set_name-before.idx"/*; do
  name=$(basename "$f")
  cmp -s "$f" "$DATA/$set_name-after.idx/$name" || same="differ ($name)"
done
echo "index bytes: $same" | tee "$out/$set_name-bytes.txt"
grid=(--max-postings "${GRID:-32,48,64,96,128,192}" --rerank 20,30 --threads 1)
for r in $(seq "$rounds"); do
  for who in before after; do
    bin=${!who}
    "$bin" bench --index "$DATA/$set_name-$who.idx" --queries "$queries" --gt "$gt" --limit "$LIMIT" --json "${grid[@]}" \
      | sed "s/^{/{\"who\":\"$who\",\"round\":$r,/" >> "$out/$set_name-fathom.jsonl"
  done
  RUST_LOG=error "$PY" "$here/peers.py" diskann "$base" "$queries" "$gt" "$DATA/peers-$set_name" --limit "$LIMIT" \
    2> "$out/$set_name-diskann.log" | sed "s/^{/{\"round\":$r,/" >> "$out/$set_name-diskann.jsonl"
done
