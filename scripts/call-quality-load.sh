#!/usr/bin/env bash
# Cost and memory of the call-quality collector (--collector.call-quality) on a simulated
# tenant of 100,000 calls a day, and its pending queue when Graph never publishes.
#
# Part 1, steady state: the simulated tenant (`teams-voice-exporter simulate`, live calls on
# the system clock, call records published 15-60 minutes after the call as Graph documents)
# and the exporter with --collector.call-quality and its defaults (wait 20m, give-up 6h),
# in separate processes. Every TVE_CQ_SAMPLE it prints the call-record requests of the
# last interval as requests an hour, the records counted, pending and given up, and the
# exporter's resident memory (VmRSS). Steady state is reached about 90 minutes after the
# start (the latest records are asked for the fourth time then).
#
# Part 2, Graph never publishes (--simulate.unpublished-call-records=1): the exporter with
# --call-quality.wait=1m --call-quality.give-up=$TVE_CQ_GIVE_UP
# --call-quality.max-pending=$TVE_CQ_MAX_PENDING; prints pending (never above the bound),
# given up by reason and resident memory, which must level off.
#
# With TVE_CQ_SPEED=N (default 1) time runs N times faster: N times the calls a day, and
# the call-record delay, --call-quality.wait, --call-quality.give-up and every rate limit
# (the simulated Graph's and the exporter's budgets) scaled by N, so that an hour of the
# tenant passes in 60/N minutes. The call log's own latency (rows appear minutes after
# their call) is not scaled, so a large N makes rows arrive later in the tenant's time and
# records look published sooner than they would be; keep N small (4). Requests an hour
# are printed as measured and divided by N (what the tenant of TVE_CQ_CALLS_PER_DAY sends).
#
# Usage: scripts/call-quality-load.sh   (from the repository; builds the release binary)
# Environment: TVE_CQ_CALLS_PER_DAY (100000), TVE_CQ_SPEED (1), TVE_CQ_STEADY (2h, part 1's length),
#   TVE_CQ_NEVER (1h, part 2's length), TVE_CQ_SAMPLE (10m), TVE_CQ_GIVE_UP (30m),
#   TVE_CQ_MAX_PENDING (1000).
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS_PER_DAY="${TVE_CQ_CALLS_PER_DAY:-100000}"
STEADY="${TVE_CQ_STEADY:-2h}"
NEVER="${TVE_CQ_NEVER:-1h}"
SAMPLE="${TVE_CQ_SAMPLE:-10m}"
GIVE_UP="${TVE_CQ_GIVE_UP:-30m}"
MAX_PENDING="${TVE_CQ_MAX_PENDING:-1000}"
SPEED="${TVE_CQ_SPEED:-1}"
SIM_CALLS_PER_DAY=$((CALLS_PER_DAY * SPEED))
# Graph's limits and the exporter's default budgets, SPEED times as fast.
SCALED_SIM=(--simulate.rate-limit=$((50 * SPEED))/60s --simulate.app-rate-limit=$((200 * SPEED))/60s
  --simulate.tenant-rate-limit=$((1000 * SPEED))/60s --simulate.call-record-rate-limit=$((1500 * SPEED))/20s)
SCALED_EXPORTER=(--graph.rate-limit=$((45 * SPEED))/60s --graph.tenant-rate-limit=$((180 * SPEED))/60s
  --call-quality.rate-limit=$((1350 * SPEED))/20s)

seconds() { # 90s, 10m, 2h -> seconds
  local n="${1%[smh]}"
  case "$1" in *h) echo $((n * 3600)) ;; *m) echo $((n * 60)) ;; *) echo "$n" ;; esac
}

echo "--- cargo build --release --locked"
cargo build --release --locked
BIN="${CARGO_TARGET_DIR:-target}/release/teams-voice-exporter"

source .ci/processes.sh

run() { # label, length, simulator flags..., --, exporter flags...
  local label="$1" length="$2"
  shift 2
  local sim_flags=() exporter_flags=()
  while [ "$1" != "--" ]; do sim_flags+=("$1"); shift; done
  shift
  exporter_flags=("$@")
  local sim_port port
  sim_port="$(free_port)"
  port="$(free_port)"
  local sim="http://127.0.0.1:$sim_port" metrics="http://127.0.0.1:$port/metrics"
  "$BIN" simulate --listen "127.0.0.1:$sim_port" --log.level=warn \
    --simulate.calls-per-day="$SIM_CALLS_PER_DAY" --simulate.history=1m "${SCALED_SIM[@]}" "${sim_flags[@]}" \
    >>"$work/simulator-$label.log" 2>&1 &
  local simulator="$!"
  pids+=("$simulator")
  until curl -fsS "$sim/_sim/stats" >/dev/null 2>&1; do sleep 0.5; done
  AZURE_TENANT_ID=00000000-0000-0000-0000-00000000d3e0 \
  AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000c11e7 \
  AZURE_CLIENT_SECRET=demo~client~secret~not~for~production \
  "$BIN" --web.listen-address="127.0.0.1:$port" --log.level=warn \
    --graph.endpoint="$sim" --azure.authority-host="$sim" \
    --state.path="$work/state-$label.redb" --collector.call-quality "${SCALED_EXPORTER[@]}" "${exporter_flags[@]}" \
    >>"$work/exporter-$label.log" 2>&1 &
  local exporter="$!"
  pids+=("$exporter")
  until curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; do sleep 1; done
  sum() { # family, label filter (awk regex on the line)
    curl -fsS "$metrics" | awk -v name="$1" -v filter="${2:-}" \
      'index($1, name) == 1 && $0 ~ filter { total += $2 } END { printf "%d", total }'
  }
  local interval total_seconds elapsed=0 before after
  interval="$(seconds "$SAMPLE")"
  total_seconds="$(seconds "$length")"
  before="$(sum teams_voice_exporter_graph_requests_total 'endpoint="callRecords"')"
  echo "--- $label: elapsed, call-record requests an hour (last interval; measured, and divided by the speed ${SPEED}), counted, pending, given up (not_published/queue_full/error), resident MiB"
  while ((elapsed < total_seconds)); do
    sleep "$interval"
    elapsed=$((elapsed + interval))
    after="$(sum teams_voice_exporter_graph_requests_total 'endpoint="callRecords"')"
    printf '%6ds %8d/h %8d/h %8s %8s %s/%s/%s %8s\n' "$elapsed" \
      $(((after - before) * 3600 / interval)) $(((after - before) * 3600 / interval / SPEED)) \
      "$(sum teams_voice_exporter_call_records_fetched_total)" \
      "$(sum teams_voice_exporter_call_records_pending)" \
      "$(sum teams_voice_exporter_call_records_given_up_total not_published)" \
      "$(sum teams_voice_exporter_call_records_given_up_total queue_full)" \
      "$(sum teams_voice_exporter_call_records_given_up_total 'reason="error"')" \
      "$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$exporter/status")"
    before="$after"
  done
  kill -TERM "$exporter" "$simulator"
  wait "$exporter" "$simulator" 2>/dev/null || true
}

run steady "$STEADY" --simulate.call-record-delay=$((900 / SPEED))s -- \
  --call-quality.wait=$((1200 / SPEED))s --call-quality.give-up=$((21600 / SPEED))s
run never-published "$NEVER" --simulate.unpublished-call-records=1 -- \
  --call-quality.wait=$((60 / SPEED))s --call-quality.give-up=$(($(seconds "$GIVE_UP") / SPEED))s \
  --call-quality.max-pending="$MAX_PENDING"
