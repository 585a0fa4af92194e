#!/usr/bin/env bash
# Soak: one server under steady load for MINUTES minutes through the Rust
# client (fathom bench --addr, CONC requests in flight), one JSON row per
# round with the server's RSS; then SUMMARY (errors, p99 spread, RSS drift).
#   benches/scripts/soak.sh INDEX QUERIES GT OUT_DIR [MINUTES] [CONC] [PORT]
# SOAK_CHECK=1: exit 1 when a round failed or RSS grew by 5% and 2 MiB or
# more (the 1-minute run in scripts/test.sh; the absolute floor keeps a
# small server's allocator noise from failing it, while a leak of even 10
# bytes per request over its ~200k requests would).
set -euo pipefail
F=$(cd "$(dirname "$0")/../.." && pwd)/target/release/fathom
IDX=$1 Q=$2 GT=$3 OUT=$4 MINUTES=${5:-30} CONC=${6:-4} PORT=${7:-7893}
mkdir -p "$OUT"
$F serve --index "$IDX" --listen 127.0.0.1:$PORT --workers 2 2> "$OUT/soak-serve.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
sleep 2
# Saturation first (16 in flight), for the load's fraction of it.
$F bench --addr http://127.0.0.1:$PORT --queries "$Q" --gt "$GT" --limit 2000 --json --concurrency 16 > "$OUT/soak-saturation.jsonl"
end=$(( $(date +%s) + MINUTES * 60 ))
: > "$OUT/soak.jsonl"
while [ "$(date +%s)" -lt $end ]; do
  row=$($F bench --addr http://127.0.0.1:$PORT --queries "$Q" --gt "$GT" --limit 10000 --json --concurrency "$CONC" 2>>"$OUT/soak-client.log" || echo '{"error":true}')
  rss=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
  echo "{\"t\":$(date +%s),\"server_rss_kib\":$rss,\"row\":$row}" >> "$OUT/soak.jsonl"
done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/soak.jsonl")]
sat = json.loads(open(f"{out}/soak-saturation.jsonl").readline())
ok = [r for r in rows if "error" not in r["row"]]
p99 = [r["row"]["p99_ms"] for r in ok]
qps = [r["row"]["qps"] for r in ok]
rss = [r["server_rss_kib"] for r in rows]
s = {
    "rounds": len(rows), "failed_rounds": len(rows) - len(ok),
    "queries": sum(r["row"]["queries"] for r in ok),
    "saturation_qps": round(sat["qps"]), "load_qps_mean": round(sum(qps) / len(qps)),
    "load_fraction": round(sum(qps) / len(qps) / sat["qps"], 2),
    "p99_ms_min": min(p99), "p99_ms_max": max(p99), "p99_ms_first": p99[0], "p99_ms_last": p99[-1],
    "rss_kib_first": rss[0], "rss_kib_last": rss[-1], "rss_kib_max": max(rss),
    "rss_drift": round((rss[-1] - rss[0]) / rss[0], 4),
}
json.dump(s, open(f"{out}/SOAK.json", "w"), indent=1)
print(json.dumps(s))
grew = s["rss_kib_last"] - s["rss_kib_first"]
if os.environ.get("SOAK_CHECK") and (s["failed_rounds"] or (s["rss_drift"] >= 0.05 and grew >= 2048)):
    sys.exit("soak check failed: failed rounds, or RSS grew by 5% and 2 MiB or more")
PY
