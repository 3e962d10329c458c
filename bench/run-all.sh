#!/usr/bin/env bash
# Runs every benchmark once (`npm run bench`). Each prints its numbers and the ratio against
# its peer; a missed target is printed, not fatal. Exits non-zero if any script failed.
# Arguments are passed to convert-rss.ts (its row count, default 20000000).
set -u
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then sed -n "2,4s/^# \{0,1\}//p" "$0"; exit 0; fi
cd "$(dirname "$0")/.."
NODE=node_modules/.bin/node
[ -x "$NODE" ] || NODE=node
failed=()
echo "bench: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for script in fits-read fits-to-csv fits-write fits-compressed-read convert-rss gpc1-ops; do
  echo
  echo "== $script"
  args=()
  [ "$script" = convert-rss ] && args=("$@")
  if ! "$NODE" "bench/$script.ts" "${args[@]}"; then
    failed+=("$script")
  fi
done
for script in datastore-download datastore-index datastore-publish; do echo; echo "== $script"; "$NODE" "bench/$script.ts" || failed+=("$script"); done
echo; echo "== pantasks-dispatch"; "$NODE" bench/pantasks-dispatch.ts || failed+=(pantasks-dispatch)
echo; echo "== dvo-addstar"; "$NODE" bench/dvo-addstar.ts || failed+=(dvo-addstar)
echo; echo "== dvo-grab"; "$NODE" bench/dvo-grab.ts || failed+=(dvo-grab)
echo; echo "== dvo-box"; "$NODE" bench/dvo-box.ts || failed+=(dvo-box)
echo; echo "== sim-throughput"; "$NODE" bench/sim-throughput.ts || failed+=(sim-throughput)
echo; echo "== neb-metadata"; "$NODE" bench/neb-metadata.ts || failed+=(neb-metadata)
echo; echo "== neb-replicate"; "$NODE" bench/neb-replicate.ts || failed+=(neb-replicate)
echo; echo "== ipptopsps-batches"; "$NODE" bench/ipptopsps-batches.ts || failed+=(ipptopsps-batches)
echo; echo "== psps-load"; "$NODE" bench/psps-load.ts || failed+=(psps-load)
echo; echo "== chain"; "$NODE" bench/chain.ts || failed+=(chain)
echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}"
  exit 1
fi
echo "bench: all scripts ran"
