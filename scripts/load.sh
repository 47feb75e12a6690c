#!/usr/bin/env bash
# Scrape load and resident memory of teams-voice-exporter on a large simulated tenant.
#
# Starts the simulated tenant (`teams-voice-exporter simulate`: 100,000 calls a day, 74 h of
# history, enough trunks for about 10,000 series) and the exporter against it as in
# production (client secret, --state.path, the default 72 h lookback), in separate processes,
# so that the exporter's resident memory is its own. Once the first read of the lookback has
# remembered about 300,000 row ids, it
#   1. reads the exporter's resident memory (VmRSS, VmHWM) at steady state;
#   2. runs 32 concurrent scrapers on /metrics with wrk, with gzip as Prometheus asks and
#      without, while the poller keeps polling every few seconds and sweeping the lookback;
#   3. reads resident memory again, and prints the figures beside their limits.
#
# Usage: scripts/load.sh            (from the repository; builds the release binary)
# Environment: TVE_LOAD_TRUNKS (default 30), TVE_LOAD_CALLS_PER_DAY (100000),
#   TVE_LOAD_DURATION (wrk run per encoding, default 60s), TVE_LOAD_CONNECTIONS (32),
#   TVE_LOAD_POLL_INTERVAL (5s), TVE_LOAD_SWEEP_INTERVAL (2m).
# Needs wrk (Debian package `wrk`; installed with apt-get when missing) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNKS="${TVE_LOAD_TRUNKS:-30}"
CALLS_PER_DAY="${TVE_LOAD_CALLS_PER_DAY:-100000}"
DURATION="${TVE_LOAD_DURATION:-60s}"
CONNECTIONS="${TVE_LOAD_CONNECTIONS:-32}"
POLL_INTERVAL="${TVE_LOAD_POLL_INTERVAL:-5s}"
SWEEP_INTERVAL="${TVE_LOAD_SWEEP_INTERVAL:-2m}"

for tool in wrk curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "--- installing $tool"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
    else
      sudo apt-get update -qq && sudo apt-get install -y -qq "$tool" >/dev/null
    fi
  fi
done

echo "--- cargo build --release --locked"
cargo build --release --locked
BIN="${CARGO_TARGET_DIR:-target}/release/teams-voice-exporter"

source .ci/processes.sh
EXPORTER=
SIMULATOR=
SIM_PORT="$(free_port)"
PORT="$(free_port)"
SIM="http://127.0.0.1:$SIM_PORT"
METRICS="http://127.0.0.1:$PORT/metrics"

start_simulator() { # history
  "$BIN" simulate --listen "127.0.0.1:$SIM_PORT" --log.level=warn \
    --simulate.calls-per-day="$CALLS_PER_DAY" --simulate.history="$1" \
    --simulate.trunks="$TRUNKS" >>"$work/simulator.log" 2>&1 &
  SIMULATOR="$!"
  pids+=("$SIMULATOR")
  for _ in $(seq 1 600); do
    curl -fsS "$SIM/_sim/stats" >/dev/null 2>&1 && return
    sleep 0.5
  done
  echo "the simulated tenant did not start" >&2
  exit 1
}
start_exporter() {
  AZURE_TENANT_ID=00000000-0000-0000-0000-00000000d3e0 \
  AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000c11e7 \
  AZURE_CLIENT_SECRET=demo~client~secret~not~for~production \
  "$BIN" --web.listen-address="127.0.0.1:$PORT" --log.level=warn \
    --graph.endpoint="$SIM" --azure.authority-host="$SIM" \
    --state.path="$work/state.redb" \
    --poll.interval="$POLL_INTERVAL" --poll.sweep-interval="$SWEEP_INTERVAL" \
    >>"$work/exporter.log" 2>&1 &
  EXPORTER="$!"
  pids+=("$EXPORTER")
}
wait_ready() {
  local started=$SECONDS
  until curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1; do
    if ! kill -0 "$EXPORTER" 2>/dev/null; then
      echo "exporter exited:" >&2
      cat "$work/exporter.log" >&2
      exit 1
    fi
    if ((SECONDS - started > 1800)); then
      echo "exporter not ready after 30 minutes" >&2
      exit 1
    fi
    sleep 1
  done
  echo "ready after $((SECONDS - started)) s"
}
stop() { # pid
  kill -TERM "$1"
  wait "$1" 2>/dev/null || true
}
metric() { # the value of a series without labels, or of the first series of a family
  curl -fsS "$METRICS" 2>/dev/null | awk -v name="$1" '$1 == name || index($1, name "{") == 1 { print $2; exit }'
}

# A first start counts nothing (it remembers what already exists), and the call series
# appear as calls are counted. To begin where an exporter that has run for days stands,
# with every call of the lookback counted, the exporter first starts on a tenant without
# history, stops, and starts again on the full tenant: the sweep after the restart counts
# every row of the lookback, as it would count calls that appeared while it was down.
echo "--- first start on an empty simulated tenant (the baseline finds nothing to count)"
start_simulator 1m
start_exporter
wait_ready
stop "$EXPORTER"
stop "$SIMULATOR"

echo "--- simulated tenant: $CALLS_PER_DAY calls a day, 74h of history, $TRUNKS trunks"
start_simulator 74h
echo "--- exporter restarted: --state.path, lookback 72h, poll every $POLL_INTERVAL, sweep every $SWEEP_INTERVAL"
start_exporter
wait_ready
# Steady state: a few polls and commits after the baseline.
sleep 20

rss() { awk -v key="$1:" '$1 == key { printf "%.1f", $2 / 1024 }' "/proc/$EXPORTER/status"; }
REMEMBERED="$(metric teams_voice_exporter_remembered_rows)"
SERIES="$(curl -fsS "$METRICS" | grep -vc '^#')"
CALL_SERIES="$(curl -fsS "$METRICS" | grep -c '^teams_direct_routing_')"
RSS_BEFORE="$(rss VmRSS)"
echo "remembered ids: $REMEMBERED; series: $SERIES ($CALL_SERIES call series); resident: $RSS_BEFORE MiB (anonymous $(rss RssAnon) MiB, files $(rss RssFile) MiB)"

run_wrk() { # encoding-label, extra wrk arguments...
  local label="$1"
  shift
  echo "--- $CONNECTIONS concurrent scrapers for $DURATION, $label"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency --timeout 10s "$@" "$METRICS" | tee "$work/wrk-$label.txt"
}
ROWS_BEFORE="$(metric teams_voice_exporter_rows_received_total)"
run_wrk gzip -H "Accept-Encoding: gzip"
run_wrk plain
ROWS_AFTER="$(metric teams_voice_exporter_rows_received_total)"
RSS_AFTER="$(rss VmRSS)"
HWM="$(rss VmHWM)"

summary() { # label
  local file="$work/wrk-$1.txt"
  local p50 p99 requests errors
  p50="$(awk '$1 == "50%" { print $2 }' "$file")"
  p99="$(awk '$1 == "99%" { print $2 }' "$file")"
  requests="$(awk '/requests in/ { print $1 }' "$file")"
  errors="$(awk '/Non-2xx or 3xx/ { n += $NF } /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$file")"
  printf '%-6s p50 %-9s p99 %-9s requests %-8s errors %s\n' "$1" "$p50" "$p99" "$requests" "$errors"
}
echo
echo "=== results ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "series on /metrics: $SERIES ($CALL_SERIES call series); remembered ids: $REMEMBERED"
echo "rows the poller read from Graph during the scrape load: $(awk -v a="$ROWS_BEFORE" -v b="$ROWS_AFTER" 'BEGIN { print b - a }')"
summary gzip
summary plain
echo "limit: p99 < 25 ms with 10,000 series and 32 scrapers, no errors"
echo "resident memory: $RSS_BEFORE MiB at steady state, $RSS_AFTER MiB after the scrape load, peak $HWM MiB"
echo "limit: at most 64 MiB resident with 300,000 ids and 10,000 series"
