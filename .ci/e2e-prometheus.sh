#!/usr/bin/env bash
# End-to-end check of the alerting rules and dashboards against a real Prometheus (issue #3).
#
# Installs Debian's prometheus and prometheus-alertmanager when promtool, prometheus or
# amtool are missing; checks the rule files, their unit tests, the example Alertmanager
# configuration; then starts a simulated provider of four tenants (issue #11), read by two
# exporter shards over one tenants file, whose home tenant has one failing trunk and toll
# fraud (issue #13: from --simulate.toll-fraud-after on, an account calls a country the
# tenant never calls, on a Direct Routing trunk and as a Calling Plan user). The exporters
# run the call-quality collector (issue #17) on call records published seconds after the
# call, and the failing trunk's audio is poor while it fails.
# A Prometheus on loopback scrapes the exporters every second from their start with the
# project's rules; .ci/e2e_toll_fraud.py gives it a week of the tenant's normal
# destinations, read from the exporter before the fraud starts, so the toll-fraud rules
# run unchanged; and .ci/e2e_check.py asserts through Prometheus' HTTP API that the failing trunk's alert
# goes pending or firing, that its poor-audio alert does too and its poor stream ratio is
# high while every healthy trunk's is low, that both toll-fraud alerts fire for the fraud's
# country, that no other alert is ever pending or firing, and that every dashboard query
# returns data.
# Then .ci/e2e_first_samples.py checks, with two Prometheus servers scraping every 2 s, that
# increase() counts what the exporter counted from its start, from a new failure's start and
# across a restart on its state file (issue #15).
# Every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

# The simulated provider (issue #11): four tenants read by two exporter shards. contoso
# (the home tenant) has the failing trunk and the toll fraud; northwind has SBCs of the
# same names, all healthy; the third consented without the permission and the fourth never
# consented (--simulate.tenants puts them last), so TeamsVoiceExporterTenantDown goes
# pending for them and nothing else about the exporters does.
TENANTS=4
FAILING_TENANT=contoso
NO_PERMISSION_TENANT=adatum
NOT_CONSENTED_TENANT=litware
DEMO_CLIENT_ID=00000000-0000-0000-0000-0000000c11e7
DEMO_CLIENT_SECRET="demo~client~secret~not~for~production"
# The trunk the failing tenant fails; every other trunk is healthy.
FAILING_TRUNK=sbc02.contoso.com
# The simulator's toll-fraud destination (TOLL_FRAUD_COUNTRY, Sierra Leone), and when its
# fraud starts: after the destinations history below has been read from the exporter.
FRAUD_COUNTRY=SL
FRAUD_AFTER=2m
# Call records (issue #17): published 5 to 20 s after the call (uniform between 1 and 4
# times the delay) instead of 15 to 60 minutes, and fetched 5 s after the call's row is
# counted, so that the failing trunk's poor audio shows within the alert check's minutes.
CALL_RECORD_DELAY=5s
CALL_QUALITY_WAIT=5s

bash .ci/install-prometheus.sh --alertmanager
PROMTOOL=$(command -v promtool)
PROMETHEUS=$(command -v prometheus)
AMTOOL=$(command -v amtool)
"$PROMETHEUS" --version 2>&1 | head -1

echo "--- promtool check rules alerts/*.rules.yml"
"$PROMTOOL" check rules alerts/*.rules.yml
echo "--- promtool test rules alerts/tests/*.yml"
"$PROMTOOL" test rules alerts/tests/*.yml
echo "--- amtool check-config alerts/alertmanager.example.yml"
"$AMTOOL" check-config alerts/alertmanager.example.yml

echo "--- cargo build --locked"
cargo build --locked --quiet
EXPORTER=target/debug/teams-voice-exporter

source .ci/processes.sh
sim_port=$(free_port)
shard_ports=("$(free_port)" "$(free_port)")
prometheus_port=$(free_port)
sim="http://127.0.0.1:${sim_port}"

echo "--- simulated provider on ${sim}: ${TENANTS} tenants, ${FAILING_TRUNK} failing in ${FAILING_TENANT}, toll fraud to ${FRAUD_COUNTRY} after ${FRAUD_AFTER}"
# A big home tenant (a million calls a day) so that every trunk passes the alerts' minimum
# volume within a minute; its customers are smaller (northwind, with SBCs of the same names
# as contoso's and healthy; one without the permission; one that never consented). Graph's
# limits run 30 times faster, as the demo's do, and so do the exporters' budgets below.
"$EXPORTER" simulate --listen="127.0.0.1:${sim_port}" \
  --simulate.tenants="${TENANTS}" \
  --simulate.failing-trunk="${FAILING_TRUNK}" \
  --simulate.toll-fraud --simulate.toll-fraud-after="${FRAUD_AFTER}" \
  --simulate.calls-per-day=1000000 \
  --simulate.history=1h \
  --simulate.call-record-delay="${CALL_RECORD_DELAY}" \
  --simulate.rate-limit=50/2s --simulate.app-rate-limit=200/2s --simulate.tenant-rate-limit=1000/2s \
  --log.level=warn >"$work/simulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  curl -fsS "${sim}/_sim/tenants" >"$work/sim-tenants.json" 2>/dev/null && break
  sleep 1
done
# The tenants file lists every simulated tenant, as a provider's would.
python3 - "$work/sim-tenants.json" >"$work/tenants.yml" <<'PY'
import json, sys
print("tenants:")
for tenant in json.load(open(sys.argv[1])):
    print(f"  - id: {tenant['id']}\n    name: {tenant['name']}")
PY
cat "$work/tenants.yml"

echo "--- two exporter shards on 127.0.0.1:${shard_ports[0]} and :${shard_ports[1]}, each reading its share of the tenants file"
# A short history and recent window keep the debug build's polls quick. The lookback
# matches the short history: with the default 72 hours, a sweep every minute of a million
# calls a day would not fit the request budget once the lookback filled, and
# TeamsVoiceExporterScheduleOverBudget would rightly go pending. The call-quality queue's
# bound is far above what an hour of the home tenant's history can fill, so that no record
# is given up for queue_full (TeamsVoiceExporterCallRecordsGivenUp).
for shard in 0 1; do
  AZURE_CLIENT_ID="${DEMO_CLIENT_ID}" AZURE_CLIENT_SECRET="${DEMO_CLIENT_SECRET}" \
    "$EXPORTER" --config.file="$work/tenants.yml" \
    --shard="${shard}" --total-shards=2 \
    --graph.endpoint="${sim}" --azure.authority-host="${sim}" \
    --graph.rate-limit=45/2s --graph.tenant-rate-limit=180/2s \
    --web.listen-address="127.0.0.1:${shard_ports[$shard]}" \
    --web.new-series-hold=30s \
    --poll.interval=3s --poll.recent-window=15m --poll.sweep-interval=1m --poll.lookback=2h \
    --collector.call-quality --call-quality.wait="${CALL_QUALITY_WAIT}" --call-quality.max-pending=200000 \
    --log.level=warn >"$work/exporter-${shard}.log" 2>&1 &
  pids+=($!)
done
# Prometheus scrapes the exporters from their start, as in a deployment: whatever a
# client other than Prometheus renders of /metrics first (the history's reads below)
# starts the new-series hold (--web.new-series-hold) of the series
# it sees, and a Prometheus started later would find some series held at 0, to be shown with
# everything they counted since the exporter started, and the others at values whose past
# it never sees: ratios over the first minutes (a healthy trunk's poor stream ratio, seen at
# 30-70 %) would weigh the held series' past. Waiting for /-/healthy renders nothing.
for shard in 0 1; do
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:${shard_ports[$shard]}/-/healthy" >/dev/null 2>&1 && break
    sleep 0.5
  done
done
rule_files=""
for file in alerts/*.rules.yml; do
  rule_files+="  - $(pwd)/${file}"$'\n'
done
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
${rule_files}
scrape_configs:
  - job_name: teams-voice
    static_configs:
      - targets: ["127.0.0.1:${shard_ports[0]}", "127.0.0.1:${shard_ports[1]}"]
YAML
mkdir -p "$work/data"
echo "--- prometheus on 127.0.0.1:${prometheus_port}"
"$PROMETHEUS" --config.file="$work/prometheus.yml" \
  --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:${prometheus_port}" \
  --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)

# The toll-fraud history below is read from the shard that reads the failing tenant, found
# through Prometheus: once it shows that shard's series, Prometheus has scraped it, and
# nothing else has read its /metrics before.
home_port=""
for _ in $(seq 1 120); do
  home_instance=$(curl -fsS --get "http://127.0.0.1:${prometheus_port}/api/v1/query" \
    --data-urlencode "query=teams_voice_exporter_tenant_up{tenant=\"${FAILING_TENANT}\"}" 2>/dev/null \
    | python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["metric"]["instance"] if r else "")' \
    2>/dev/null || true)
  home_port=${home_instance##*:}
  [ -n "$home_port" ] && break
  sleep 1
done
if [ -z "$home_port" ]; then
  echo "FAIL: Prometheus shows no shard reading ${FAILING_TENANT}"
  tail -n 20 "$work"/exporter-*.log "$work/prometheus.log"
  exit 1
fi
echo "${FAILING_TENANT} is read by the shard on :${home_port}"

# The toll-fraud alerts compare with the week before (and stay quiet without it): a week
# of the destinations the exporter shows before the fraud starts, written as blocks of the
# same scrape job and target and moved into the running Prometheus' storage, which loads
# new blocks within a minute.
echo "--- a week of the tenant's normal destinations into Prometheus' storage"
python3 .ci/e2e_toll_fraud.py \
  --exporter "http://127.0.0.1:${home_port}" \
  --data-dir "$work/data" \
  --prometheus "http://127.0.0.1:${prometheus_port}" \
  --job teams-voice --instance "127.0.0.1:${home_port}" \
  --fraud-country "${FRAUD_COUNTRY}" \
  --promtool "$PROMTOOL" || {
  status=$?
  echo "--- exporter logs (last 40 lines)"
  tail -n 40 "$work"/exporter-*.log || true
  echo "--- prometheus log (last 20 lines)"
  tail -n 20 "$work/prometheus.log" || true
  exit "$status"
}

status=0
python3 .ci/e2e_check.py \
  --prometheus "http://127.0.0.1:${prometheus_port}" \
  --exporter "http://127.0.0.1:${shard_ports[0]}" \
  --exporter "http://127.0.0.1:${shard_ports[1]}" \
  --failing-trunk "${FAILING_TRUNK}" \
  --failing-tenant "${FAILING_TENANT}" \
  --down-tenant "${NO_PERMISSION_TENANT}" \
  --down-tenant "${NOT_CONSENTED_TENANT}" \
  --fraud-country "${FRAUD_COUNTRY}" \
  --call-quality \
  --promtool "$PROMTOOL" \
  dashboards/*.json || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- exporter logs (last 40 lines)"
  tail -n 40 "$work"/exporter-*.log || true
  echo "--- simulator log (last 20 lines)"
  tail -n 20 "$work/simulator.log" || true
  echo "--- prometheus log (last 40 lines)"
  tail -n 40 "$work/prometheus.log" || true
  echo "--- e2e-prometheus took $((SECONDS - started))s"
  exit "$status"
fi
# The second check runs alone on the machine: its windows count scrapes every 2 s.
cleanup
pids=()

echo "--- what Prometheus counts of new series, across a new failure and a restart (about 9 minutes)"
python3 .ci/e2e_first_samples.py --exporter-bin "$EXPORTER" --prometheus-bin "$PROMETHEUS" || status=$?
echo "--- e2e-prometheus took $((SECONDS - started))s"
exit "$status"
