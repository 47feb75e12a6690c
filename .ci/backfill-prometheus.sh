#!/usr/bin/env bash
# History backfill against a real Prometheus (issue #16).
#
# Starts a simulated tenant with 30 days of history (live traffic, so rows were published
# minutes to two days after their calls) under Graph's documented limits, with every 7th
# request throttled on top; runs `teams-voice-exporter backfill` over the part of the history
# Graph will no longer change (older than two days); turns the file into blocks with
# `promtool tsdb create-blocks-from openmetrics`; starts Prometheus on the blocks on a
# loopback port; and .ci/backfill_check.py asserts through its HTTP API that every call
# series at the end of the range, and increase() over every day, equal the counts computed
# from the simulator's ground truth (/_sim/ground-truth).
# Installs Debian's prometheus (.ci/install-prometheus.sh) when promtool or prometheus is
# missing. Every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

DEMO_CLIENT_ID=00000000-0000-0000-0000-0000000c11e7
DEMO_CLIENT_SECRET="demo~client~secret~not~for~production"
HISTORY_DAYS=30
# Graph publishes rows up to two days after the call: older days no longer change.
SETTLED_DAYS=3
STEP=1h

bash .ci/install-prometheus.sh
PROMTOOL=$(command -v promtool)
PROMETHEUS=$(command -v prometheus)
"$PROMETHEUS" --version 2>&1 | head -1

echo "--- cargo build --locked"
cargo build --locked --quiet
EXPORTER=target/debug/teams-voice-exporter

source .ci/processes.sh
sim_port=$(free_port)
prometheus_port=$(free_port)
sim="http://127.0.0.1:${sim_port}"

echo "--- simulated tenant on ${sim}: ${HISTORY_DAYS} days of history, Graph's documented limits, every 7th request throttled"
"$EXPORTER" simulate --listen="127.0.0.1:${sim_port}" \
  --simulate.calls-per-day=3000 --simulate.history="${HISTORY_DAYS}d" \
  --log.level=warn >"$work/simulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  curl -fsS "${sim}/_sim/faults" >"$work/faults.json" 2>/dev/null && break
  sleep 1
done
python3 - "$work/faults.json" >"$work/faults-throttled.json" <<'PY'
import json, sys
faults = json.load(open(sys.argv[1]))
faults.update(throttle_every=7, retry_after_secs=1)
print(json.dumps(faults))
PY
curl -fsS -X PUT --data-binary @"$work/faults-throttled.json" "${sim}/_sim/faults" >/dev/null

from=$(date -u -d "-$((HISTORY_DAYS - 1)) days" +%Y-%m-%dT00:00:00Z)
to=$(date -u -d "-${SETTLED_DAYS} days" +%Y-%m-%dT00:00:00Z)
echo "--- backfill ${from} to ${to}, a sample every ${STEP}"
AZURE_TENANT_ID=00000000-0000-0000-0000-00000000d3e0 \
AZURE_CLIENT_ID="${DEMO_CLIENT_ID}" AZURE_CLIENT_SECRET="${DEMO_CLIENT_SECRET}" \
  "$EXPORTER" backfill --from="$from" --to="$to" --step="$STEP" --output="$work/history.om" \
  --graph.endpoint="${sim}" --azure.authority-host="${sim}"
ls -l "$work/history.om"
tail -c 6 "$work/history.om" | grep -q '^# EOF$'

echo "--- promtool tsdb create-blocks-from openmetrics"
# One pass over the file per block: the default 2-hour blocks would read it 350 times.
"$PROMTOOL" tsdb create-blocks-from openmetrics --max-block-duration=720h \
  "$work/history.om" "$work/data" | tail -3

echo "--- Prometheus on the blocks at 127.0.0.1:${prometheus_port}"
printf 'global:\n  scrape_interval: 1h\n' >"$work/prometheus.yml"
# The blocks are weeks old: a retention shorter than the history would delete them.
"$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --storage.tsdb.retention.time=400d --web.listen-address="127.0.0.1:${prometheus_port}" \
  >"$work/prometheus.log" 2>&1 &
pids+=($!)

python3 .ci/backfill_check.py --prometheus="http://127.0.0.1:${prometheus_port}" --simulator="$sim" \
  --from="$from" --to="$to"
echo "--- backfill checked against Prometheus in $((SECONDS - started)) s"
