#!/usr/bin/env bash
# One exporter reading a managed-service provider's 200 tenants (issue #11).
#
# Starts the simulated provider (`teams-voice-exporter simulate --simulate.tenants=200`,
# every customer at 5,000 Direct Routing calls a day plus a fifth of that in PSTN calls:
# 1,000,000 Direct Routing calls a day in all, 74 h of history, Graph's documented limits
# per app per tenant; one tenant has not consented and one lacks the permission, as in a
# real provider) and, in a process of its own, the release exporter reading all of them
# from a tenants file with the multi-tenant app's secret, --state.path and the default
# schedule. It then measures
#   1. how long until /-/ready (every tenant's first read finished);
#   2. after every tenant's first sweep of the lookback (steady state): resident memory
#      (VmRSS, VmHWM) and CPU time over --window (TVE_TENANTS_WINDOW, default 10m),
#      given per hour;
#   3. /metrics: series, bytes plain and gzipped, and the time of 20 gzip scrapes;
#   4. that no tenant's counting waited for another's: the largest age of a tenant's last
#      successful poll, polls that started late, and requests that waited for the budget.
#
# Usage: scripts/tenants-load.sh     (from the repository; builds the release binary)
# Environment: TVE_TENANTS (200), TVE_TENANT_CALLS_PER_DAY (5000), TVE_TENANTS_WINDOW (600,
#   seconds of the CPU measurement).
set -euo pipefail
cd "$(dirname "$0")/.."

TENANTS="${TVE_TENANTS:-200}"
CALLS="${TVE_TENANT_CALLS_PER_DAY:-5000}"
WINDOW="${TVE_TENANTS_WINDOW:-600}"

echo "--- cargo build --release --locked"
cargo build --release --locked
BIN="${CARGO_TARGET_DIR:-target}/release/teams-voice-exporter"

source .ci/processes.sh
SIM_PORT="$(free_port)"
PORT="$(free_port)"
SIM="http://127.0.0.1:$SIM_PORT"
URL="http://127.0.0.1:$PORT"

echo "--- simulated provider: $TENANTS tenants of $CALLS calls a day"
started=$(date +%s)
"$BIN" simulate --listen="127.0.0.1:$SIM_PORT" \
  --simulate.tenants="$TENANTS" \
  --simulate.calls-per-day="$CALLS" --simulate.customer-calls-per-day="$CALLS" \
  --log.level=warn >"$work/simulator.log" 2>&1 &
pids+=($!)
until curl -fsS "$SIM/_sim/tenants" >"$work/tenants.json" 2>/dev/null; do sleep 1; done
echo "simulator bound in $(( $(date +%s) - started ))s"
python3 - "$work/tenants.json" >"$work/tenants.yml" <<'PY'
import json, sys
print("tenants:")
for tenant in json.load(open(sys.argv[1])):
    print(f"  - id: {tenant['id']}\n    name: {tenant['name']}")
PY

echo "--- exporter: $TENANTS tenants, default schedule, --state.path"
started=$(date +%s.%N)
AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000c11e7 \
AZURE_CLIENT_SECRET='demo~client~secret~not~for~production' \
  "$BIN" --config.file="$work/tenants.yml" --state.path="$work/state.redb" \
  --graph.endpoint="$SIM" --azure.authority-host="$SIM" \
  --web.listen-address="127.0.0.1:$PORT" --log.level=warn >"$work/exporter.log" 2>&1 &
EXPORTER=$!
pids+=("$EXPORTER")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/-/ready")" = 200 ]; do sleep 0.2; done
ready=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
echo "ready (every tenant's first read finished) after ${ready}s"

metric() { # sum of a metric's samples matching a grep pattern
  curl -fsS "$URL/metrics" | grep -E "^$1" | awk '{s += $NF} END {printf "%.3f\n", s}'
}
# Steady state: every readable tenant has run a long read (its late window, due every
# 15 minutes, or a sweep of the lookback) beside its recent polls.
readable=$(python3 -c "import json; print(sum(1 for t in json.load(open('$work/tenants.json')) if t['consent'] == 'granted'))")
echo "--- waiting for a long read (late window or sweep) of every one of $readable readable tenants"
long_reads() { # tenants that have run a long read of their Direct Routing log
  curl -fsS "$URL/metrics" | python3 -c '
import re, sys
done = set()
for line in sys.stdin:
    m = re.match(r"teams_voice_exporter_poll_duration_seconds_count\{(.*)\} (\S+)$", line)
    if m and float(m.group(2)) > 0 and re.search(r"kind=\"(late|sweep)\"", m.group(1)) \
            and "getDirectRoutingCalls" in m.group(1):
        done.add(re.search(r"tenant=\"([^\"]*)\"", m.group(1)).group(1))
print(len(done))'
}
until [ "$(long_reads)" -ge "$readable" ]; do sleep 10; done
echo "every tenant ran a long read after $(python3 -c "import time; print(f'{time.time() - $started:.0f}')")s"

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$EXPORTER/stat"; }
cpu_before=$(cpu)
echo "--- measuring CPU over ${WINDOW}s"
sleep "$WINDOW"
cpu_after=$(cpu)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$EXPORTER/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$EXPORTER/status")

curl -fsS "$URL/metrics" >"$work/metrics.txt"
curl -fsS -H 'Accept-Encoding: gzip' "$URL/metrics" -o "$work/metrics.gz"
series=$(grep -vc '^#' "$work/metrics.txt")
scrape_total=0
for _ in $(seq 1 20); do
  t=$(curl -fsS -H 'Accept-Encoding: gzip' -o /dev/null -w '%{time_total}' "$URL/metrics")
  scrape_total=$(python3 -c "print($scrape_total + $t)")
done

now=$(date +%s)
oldest_success=$(grep -E '^teams_voice_exporter_last_success_timestamp_seconds\{' "$work/metrics.txt" \
  | grep -vE "tenant=\"($(python3 -c "import json; print('|'.join(t['name'] for t in json.load(open('$work/tenants.json')) if t['consent'] != 'granted'))"))\"" \
  | awk -v now="$now" 'BEGIN {m = 0} {age = now - $NF; if (age > m) m = age} END {print m}')
delayed=$(grep -E '^teams_voice_exporter_polls_delayed_total\{.*kind="recent"' "$work/metrics.txt" | awk '{s += $NF} END {print s + 0}')
waited=$(grep -E '^teams_voice_exporter_graph_budget_delayed_requests_total\{.*priority="recent"' "$work/metrics.txt" | awk '{s += $NF} END {print s + 0}')
throttled=$(grep -E '^teams_voice_exporter_graph_throttled_total\{' "$work/metrics.txt" | awk '{s += $NF} END {print s + 0}')

python3 - <<PY
ticks, window = $ticks, $WINDOW
cpu = ($cpu_after - $cpu_before) / ticks
print(f"tenants:                         $TENANTS ($readable readable), $CALLS calls a day each")
print(f"time until ready:                ${ready} s")
print(f"resident memory:                 {$rss / 1024:.0f} MiB now, {$hwm / 1024:.0f} MiB peak (target: under 1 GiB)")
print(f"CPU:                             {cpu:.1f} s over {window} s = {cpu * 3600 / window:.0f} CPU-seconds an hour ({cpu / window * 100:.2f}% of a core)")
print(f"/metrics series:                 $series")
print(f"/metrics size:                   {$(stat -c %s "$work/metrics.txt") / 1048576:.1f} MiB plain, {$(stat -c %s "$work/metrics.gz") / 1048576:.2f} MiB gzip")
print(f"scrape time (gzip, mean of 20):  {$scrape_total / 20 * 1000:.0f} ms (target: under 1 s)")
print(f"oldest last success of a readable tenant: $oldest_success s ago (poll interval 1m)")
print(f"recent polls started late:       $delayed")
print(f"recent requests that waited for the budget: $waited")
print(f"responses Graph throttled:       $throttled")
PY
