#!/bin/sh
# Brings this pod's shard of the index version named in $VERSION_FILE from
# the builds volume ($BUILDS/<version>/shard-<i>) to the pod's own volume
# ($INDEX_ROOT/<version>), checks every checksum, then points
# $INDEX_ROOT/CURRENT at it (the server swaps on its next check). Keeps the
# previous version for a rollback and removes older ones.
# The shard number is the pod's ordinal (the end of its name).
# --once: wait until the version is in place (init container); else check
# every $SYNC_INTERVAL seconds (sidecar).
set -u
shard="${SHARD:-${HOSTNAME##*-}}"

sync_once() {
  v=$(cat "$VERSION_FILE" 2>/dev/null | tr -d ' \n') || return 1
  [ -n "$v" ] || return 1
  dst="$INDEX_ROOT/$v"
  if [ ! -d "$dst" ]; then
    src="$BUILDS/$v/shard-$shard"
    if [ ! -f "$src/manifest.json" ]; then
      echo "sync: waiting for $src" >&2
      return 1
    fi
    tmp="$INDEX_ROOT/.$v.copy"
    rm -rf "$tmp"
    cp -r "$src" "$tmp" || return 1
    if ! fathom info --verify "$tmp" >/dev/null; then
      echo "sync: $src failed its checksums; not served" >&2
      rm -rf "$tmp"
      return 1
    fi
    mv "$tmp" "$dst" || return 1
    echo "sync: copied version $v of shard $shard" >&2
  fi
  old=$(cat "$INDEX_ROOT/CURRENT" 2>/dev/null)
  if [ "$old" != "$v" ]; then
    echo "$v" > "$INDEX_ROOT/.CURRENT.tmp" && mv "$INDEX_ROOT/.CURRENT.tmp" "$INDEX_ROOT/CURRENT" || return 1
    echo "sync: CURRENT is now $v (was ${old:-none})" >&2
    [ -n "$old" ] && echo "$old" > "$INDEX_ROOT/.previous"
  fi
  # Keep the current and the previous version.
  prev=$(cat "$INDEX_ROOT/.previous" 2>/dev/null)
  for d in "$INDEX_ROOT"/*/; do
    n=$(basename "$d")
    [ "$n" = "$v" ] || [ "$n" = "$prev" ] || rm -rf "$d"
  done
  return 0
}

mkdir -p "$INDEX_ROOT"
if [ "${1:-}" = "--once" ]; then
  until sync_once; do sleep "${SYNC_INTERVAL:-15}"; done
else
  while true; do
    sync_once || true
    sleep "${SYNC_INTERVAL:-15}"
  done
fi
