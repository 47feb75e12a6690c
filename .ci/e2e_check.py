#!/usr/bin/env python3
"""Assertions of the end-to-end check (.ci/e2e-prometheus.sh), through Prometheus' HTTP API.

- every exporter's (every shard's) /metrics passes `promtool check metrics`;
- every recording and alerting rule evaluates without error;
- the failing trunk's TeamsDirectRoutingTrunkLowNER alert goes pending or firing for the
  failing tenant (--failing-tenant), and no alert ever names a healthy trunk, or the
  failing trunk's name in another tenant (a tenant with an SBC of the same name);
- with --down-tenant (a tenant not consented or without the permission):
  TeamsVoiceExporterTenantDown goes pending for each, and the exporter-health alerts
  active are about those tenants only; without, no exporter-health alert is active;
- with --call-quality (the exporters run --collector.call-quality): the failing trunk's
  TeamsDirectRoutingTrunkPoorAudio goes pending or firing for the failing tenant, its
  poor stream ratio (the 15-minute recording rule) is above the alert's threshold in some
  direction while every healthy trunk's stays under it in every direction;
- with --fraud-country (the exporter runs --simulate.toll-fraud, and .ci/e2e_toll_fraud.py
  gave Prometheus a week of the tenant's normal destinations): the toll-fraud alerts of
  both logs (--fraud-alert) fire for that country, and no alert other than these and the
  failing trunk's is ever pending or firing;
- every query of every dashboard panel and variable, with its variables substituted, runs
  without error and returns data; every panel has a unit and thresholds and uses the
  dashboard's datasource variable.

Standard library only.
"""

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# What Grafana would put in for its built-in variables, for a Prometheus scraped every second
# that has a few minutes of data; dashboard variables become "All" (.*).
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
ALERT_WAIT_SECONDS = 300
# Until Prometheus has scraped every shard once, the sharding alerts see a shard missing;
# their `for` keeps them pending, and they must be gone after this.
SHARD_ALERTS = ("TeamsVoiceExporterShardsMissing", "TeamsVoiceExporterShardingMismatch")
SHARD_GRACE_SECONDS = 30
# Right after a first start, calls are counted as their rows appear, and a failed call's row
# appears as soon as it ends while an established call's only after it ends, minutes later:
# the first minutes over-weigh failures, and a healthy trunk's NER can dip below the alert's
# threshold. Its `for: 5m` keeps that pending; such an alert may be pending (never firing)
# during this grace, and must be gone after it.
TRUNK_GRACE_SECONDS = 150
QUIET_CHECK_SECONDS = 20
# Call records are fetched --call-quality.wait after a call's row is counted and Graph
# publishes them --simulate.call-record-delay (1 to 4 times) after the call: with the
# end-to-end check's seconds, streams are counted within a minute of the exporters' start.
QUALITY_ALERT = "TeamsDirectRoutingTrunkPoorAudio"
QUALITY_WAIT_SECONDS = 300
POOR_RATIO_RULE = "trunk_fqdn_direction:teams_direct_routing_audio_poor:ratio_rate15m"
# The alert's threshold, in alerts/teams-call-quality.rules.yml.
POOR_RATIO_THRESHOLD = 0.1
# Toll-fraud alerts need 5 of the fraud's calls counted in 30 minutes, and Graph publishes
# rows 30 s to hours after the call (most within 5 minutes); then 1 minute of "for".
FRAUD_WAIT_SECONDS = 900
FRAUD_ALERTS = ("TeamsDirectRoutingCallsToNewCountry", "TeamsPstnCallsToNewCountry")
FRAUD_PROGRESS = {
    "TeamsDirectRoutingCallsToNewCountry": "teams_direct_routing_calls_by_country_total",
    "TeamsPstnCallsToNewCountry": "teams_pstn_calls_by_country_total",
}


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def api(prometheus, path, **params):
    url = f"{prometheus}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        body = json.loads(get(url, timeout=30))
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}")
    if body.get("status") != "success":
        raise QueryError(body.get("error", "no error given"))
    return body["data"]


class QueryError(Exception):
    pass


def wait_for(what, check, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, QueryError, ValueError):
            pass
        if time.monotonic() > deadline:
            fail(f"{what} did not happen within {seconds}s")
        time.sleep(1)


def substitute(expr):
    def value(match):
        name = match.group(1) or match.group(2)
        return BUILTINS.get(name, ".*")

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def check_dashboard_shape(path, dashboard):
    if "__inputs" in dashboard:
        fail(f"{path}: __inputs is for manual import only; use the datasource variable")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    if "datasource" not in variables:
        fail(f"{path}: no datasource variable")
    if variables["datasource"]["type"] != "datasource":
        fail(f"{path}: the datasource variable must be of type datasource")
    text = json.dumps(dashboard)
    for uid in re.findall(r'"uid": "([^"]*)"', text):
        if uid not in ("${datasource}", "-- Grafana --", dashboard["uid"]):
            fail(f"{path}: hard-coded uid {uid!r}; use ${{datasource}}")
    for panel in panels_of(dashboard):
        if panel["type"] == "row":
            continue
        title = panel.get("title", "?")
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if not defaults.get("unit"):
            fail(f"{path}: panel {title!r} has no unit")
        if not defaults.get("thresholds", {}).get("steps"):
            fail(f"{path}: panel {title!r} has no thresholds")
        if not panel.get("description"):
            fail(f"{path}: panel {title!r} has no description")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"{path}: panel {title!r} does not use the datasource variable")


def check_dashboards(prometheus, paths):
    queries = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
        check_dashboard_shape(path, dashboard)
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            definition = variable["definition"]
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", definition)
            if not match:
                fail(f"{path}: variable {variable['name']}: cannot check {definition!r}")
            selector, label = substitute(match.group(1)), match.group(2)
            series = api(prometheus, "/api/v1/series", **{"match[]": selector})
            values = {s[label] for s in series if label in s}
            if not values:
                fail(f"{path}: variable {variable['name']} ({definition}) has no values")
            queries += 1
        for panel in panels_of(dashboard):
            for target in panel.get("targets", []):
                expr = substitute(target["expr"])
                title = f"{path}: panel {panel['title']!r} query {target['refId']}"
                last = {"error": None}

                def has_data():
                    try:
                        data = api(prometheus, "/api/v1/query", query=expr)
                    except QueryError as error:
                        last["error"] = str(error)
                        # A query error is final, not something to wait out.
                        fail(f"{title} fails: {error}\n  {expr}")
                    last["error"] = "no data"
                    return len(data["result"]) > 0

                # Recording rules over 1h windows need a few evaluations; give them time.
                deadline = time.monotonic() + 60
                while not has_data():
                    if time.monotonic() > deadline:
                        fail(f"{title} returns no data\n  {expr}")
                    time.sleep(2)
                queries += 1
    return queries


def check_metrics(exporter, promtool):
    metrics = get(f"{exporter}/metrics")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=metrics, capture_output=True, check=False
    )
    output = (result.stdout + result.stderr).decode().strip()
    if result.returncode != 0 or output:
        fail(f"promtool check metrics on the exporter's /metrics:\n{output}")
    print(f"ok: promtool check metrics is clean ({len(metrics)} bytes of metrics)")


def check_rules_healthy(prometheus):
    groups = api(prometheus, "/api/v1/rules")["groups"]
    count = 0
    for group in groups:
        for rule in group["rules"]:
            count += 1
            if rule.get("health") not in ("ok", "unknown"):
                fail(f"rule {rule['name']} in {group['name']}: {rule.get('lastError')}")
    return count


class Expect:
    """What the simulated faults should raise."""

    def __init__(self, failing_trunk, failing_tenant, fraud_country, fraud_alerts, down_tenants, call_quality=False):
        self.failing_trunk = failing_trunk
        self.call_quality = call_quality
        self.failing_tenant = failing_tenant
        self.fraud_country = fraud_country
        self.fraud_alerts = fraud_alerts
        self.down_tenants = set(down_tenants)

    def of_failing_tenant(self, labels):
        return self.failing_tenant is None or labels.get("tenant") == self.failing_tenant

    def is_failing_trunk(self, labels):
        return labels.get("trunk_fqdn") == self.failing_trunk and self.of_failing_tenant(labels)

    def __call__(self, alert):
        """Whether an active alert is one the simulated faults should raise."""
        labels = alert["labels"]
        name = labels["alertname"]
        if name.startswith("TeamsVoiceExporter"):
            return labels.get("tenant") in self.down_tenants
        if labels.get("trunk_fqdn") == self.failing_trunk and self.of_failing_tenant(labels):
            return True
        return (
            self.fraud_country is not None
            and name in self.fraud_alerts
            and labels.get("country") == self.fraud_country
            and self.of_failing_tenant(labels)
        )


def fraud_progress(prometheus, fraud_country, fraud_alerts):
    parts = []
    for name in fraud_alerts:
        family = FRAUD_PROGRESS.get(name)
        if family is None:
            continue
        query = f'sum(increase({family}{{direction="outbound", country="{fraud_country}"}}[30m]))'
        try:
            result = api(prometheus, "/api/v1/query", query=query)["result"]
        except QueryError as error:
            result, parts = [], parts + [f"{family}: {error}"]
            continue
        calls = float(result[0]["value"][1]) if result else 0.0
        parts.append(f"{family}: {calls:.1f}")
    return ", ".join(parts)


def watch_alerts(prometheus, expect):
    """Waits for the failing trunk's alert, the down tenants' TenantDown and, with a fraud
    country, for the toll-fraud alerts firing for it; fails on any other alert, pending or
    firing."""
    failing_trunk, fraud_country, fraud_alerts = expect.failing_trunk, expect.fraud_country, expect.fraud_alerts
    down_seen = set()
    started = time.monotonic()
    seen_at = None
    fraud_at = {}
    quality_at = None
    seen = set()
    progress_at = started
    while True:
        alerts = api(prometheus, "/api/v1/alerts")["alerts"]
        for alert in alerts:
            labels = alert["labels"]
            name = labels["alertname"]
            trunk = labels.get("trunk_fqdn")
            watched = time.monotonic() - started
            if name in SHARD_ALERTS and alert["state"] == "pending" and watched < SHARD_GRACE_SECONDS:
                continue
            if (
                trunk is not None
                and alert["state"] == "pending"
                and watched < TRUNK_GRACE_SECONDS
                and not expect(alert)
            ):
                if (name, trunk, labels.get("tenant")) not in seen:
                    seen.add((name, trunk, labels.get("tenant")))
                    print(f"note: {name} is pending for the healthy trunk {trunk} of {labels.get('tenant')} {watched:.0f}s into the watch (allowed for {TRUNK_GRACE_SECONDS}s, never firing)")
                continue
            if not expect(alert):
                if trunk is not None:
                    fail(f"{name} ({alert['state']}) names the healthy trunk {trunk} of {labels.get('tenant')}: {labels}")
                if name.startswith("TeamsVoiceExporter"):
                    fail(f"exporter alert {name} is {alert['state']}: {alert['annotations']}")
                hint = ""
                if name in FRAUD_ALERTS:
                    hint = (
                        " (a destination the tenant calls that .ci/e2e_toll_fraud.py did not see during"
                        " its --settle, before the fraud started: a longer --settle lets it see rarer ones)"
                    )
                fail(f"unexpected alert {name} ({alert['state']}): {labels} {alert['annotations'].get('summary')}{hint}")
            if name == "TeamsVoiceExporterTenantDown":
                down_seen.add(labels.get("tenant"))
            subject = trunk if trunk == failing_trunk else labels.get("country") or labels.get("tenant")
            if (name, alert["state"]) not in seen:
                seen.add((name, alert["state"]))
                print(
                    f"ok: {name} is {alert['state']} for {subject} after "
                    f"{time.monotonic() - started:.0f}s: {alert['annotations'].get('summary')}"
                )
            if name == "TeamsDirectRoutingTrunkLowNER" and seen_at is None:
                seen_at = time.monotonic()
            if name == QUALITY_ALERT and quality_at is None:
                quality_at = time.monotonic()
            if name in fraud_alerts and alert["state"] == "firing" and name not in fraud_at:
                fraud_at[name] = time.monotonic()
        now = time.monotonic()
        fraud_done = fraud_country is None or (
            len(fraud_at) == len(fraud_alerts) and now - max(fraud_at.values()) >= QUIET_CHECK_SECONDS
        )
        down_done = down_seen >= expect.down_tenants
        quality_done = not expect.call_quality or (
            quality_at is not None and now - quality_at >= QUIET_CHECK_SECONDS
        )
        if seen_at is not None and now - seen_at >= QUIET_CHECK_SECONDS and fraud_done and down_done and quality_done:
            return
        if expect.call_quality and quality_at is None and now - started > QUALITY_WAIT_SECONDS:
            fail(
                f"{QUALITY_ALERT} for {failing_trunk} did not go pending in {QUALITY_WAIT_SECONDS}s "
                f"(poor stream ratios: {poor_ratios_text(prometheus)})"
            )
        if not down_done and now - started > ALERT_WAIT_SECONDS:
            fail(f"TeamsVoiceExporterTenantDown did not go pending for {sorted(expect.down_tenants - down_seen)} in {ALERT_WAIT_SECONDS}s")
        if seen_at is None and now - started > ALERT_WAIT_SECONDS:
            fail(f"TeamsDirectRoutingTrunkLowNER for {failing_trunk} did not go pending in {ALERT_WAIT_SECONDS}s")
        if fraud_country is not None:
            missing = [name for name in fraud_alerts if name not in fraud_at]
            if missing and now - started > FRAUD_WAIT_SECONDS:
                fail(
                    f"{', '.join(missing)} did not fire for {fraud_country} in {FRAUD_WAIT_SECONDS}s "
                    f"(outbound calls to {fraud_country} in the last 30 minutes: "
                    f"{fraud_progress(prometheus, fraud_country, fraud_alerts)})"
                )
            if missing and now - progress_at >= 30:
                progress_at = now
                print(
                    f"waiting {now - started:.0f}s for {', '.join(missing)} ({fraud_country}): outbound calls "
                    f"in the last 30 minutes: {fraud_progress(prometheus, fraud_country, fraud_alerts)}"
                )
        time.sleep(1)


def poor_ratios(prometheus):
    """The 15-minute poor stream ratio of every trunk and direction: {(tenant, trunk, direction): ratio}."""
    result = api(prometheus, "/api/v1/query", query=POOR_RATIO_RULE)["result"]
    return {
        (s["metric"].get("tenant"), s["metric"].get("trunk_fqdn"), s["metric"].get("direction")): float(s["value"][1])
        for s in result
    }


def poor_ratios_text(prometheus):
    try:
        ratios = poor_ratios(prometheus)
    except (OSError, urllib.error.URLError, QueryError) as error:
        return f"cannot query {POOR_RATIO_RULE}: {error}"
    if not ratios:
        return f"{POOR_RATIO_RULE} has no series yet"
    return ", ".join(f"{tenant}/{trunk}/{direction} {ratio:.1%}" for (tenant, trunk, direction), ratio in sorted(ratios.items()))


def check_poor_ratios(prometheus, expect):
    """The failing trunk's poor stream ratio is above the alert's threshold in some
    direction; every healthy trunk's is under it in every direction."""
    ratios = poor_ratios(prometheus)
    failing = {key: ratio for key, ratio in ratios.items() if expect.is_failing_trunk({"tenant": key[0], "trunk_fqdn": key[1]})}
    healthy = {key: ratio for key, ratio in ratios.items() if key not in failing}
    if not failing or max(failing.values()) <= POOR_RATIO_THRESHOLD:
        fail(f"the failing trunk's poor stream ratio is not above {POOR_RATIO_THRESHOLD:.0%}: {poor_ratios_text(prometheus)}")
    if not healthy:
        fail(f"no healthy trunk has a poor stream ratio: {poor_ratios_text(prometheus)}")
    high = {key: ratio for key, ratio in healthy.items() if ratio > POOR_RATIO_THRESHOLD}
    if high:
        fail(f"healthy trunks' poor stream ratio above {POOR_RATIO_THRESHOLD:.0%}: {poor_ratios_text(prometheus)}")
    print(
        f"ok: poor stream ratio of the failing trunk {', '.join(f'{d} {r:.1%}' for (_, _, d), r in sorted(failing.items()))}; "
        f"of {len(healthy)} healthy trunk directions at most {max(healthy.values()):.1%}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--exporter", required=True, action="append", help="an exporter (a shard) Prometheus scrapes; repeatable")
    parser.add_argument("--failing-trunk", required=True)
    parser.add_argument("--failing-tenant", help="the tenant whose trunk fails (and whose calls go to the fraud's country)")
    parser.add_argument("--down-tenant", action="append", default=[], help="a tenant that cannot be read: TenantDown must go pending for it (repeatable)")
    parser.add_argument("--promtool", default="promtool")
    parser.add_argument(
        "--call-quality",
        action="store_true",
        help=f"the exporters run --collector.call-quality: {QUALITY_ALERT} must go pending for the failing trunk",
    )
    parser.add_argument(
        "--fraud-country",
        help="the simulated toll fraud's country (ISO alpha-2): its toll-fraud alerts must fire",
    )
    parser.add_argument(
        "--fraud-alert",
        action="append",
        choices=FRAUD_ALERTS,
        help="a toll-fraud alert that must fire for --fraud-country (repeatable; default: both logs')",
    )
    parser.add_argument("dashboards", nargs="+")
    args = parser.parse_args()
    began = time.monotonic()

    for exporter in args.exporter:
        wait_for(f"{exporter}/-/ready", lambda: get(f"{exporter}/-/ready"), 120)
    wait_for("Prometheus' /-/ready", lambda: get(f"{args.prometheus}/-/ready"), 60)
    for exporter in args.exporter:
        check_metrics(exporter, args.promtool)

    def targets_up():
        targets = api(args.prometheus, "/api/v1/targets")["activeTargets"]
        return len(targets) == len(args.exporter) and all(t["health"] == "up" for t in targets)

    wait_for("every exporter's scrape target going up", targets_up, 60)
    fraud_alerts = tuple(args.fraud_alert or FRAUD_ALERTS) if args.fraud_country else ()
    expect = Expect(
        args.failing_trunk, args.failing_tenant, args.fraud_country, fraud_alerts, args.down_tenant, args.call_quality
    )
    watch_alerts(args.prometheus, expect)
    if args.call_quality:
        check_poor_ratios(args.prometheus, expect)
    rules = check_rules_healthy(args.prometheus)
    print(f"ok: all {rules} rules evaluate without error")
    queries = check_dashboards(args.prometheus, args.dashboards)
    print(f"ok: {queries} dashboard queries (panels and variables) return data")
    # Still quiet for the healthy trunks and other countries after the dashboard checks.
    watch_quiet = api(args.prometheus, "/api/v1/alerts")["alerts"]
    for alert in watch_quiet:
        if not expect(alert):
            fail(f"{alert['labels']['alertname']} ({alert['state']}) is active: {alert['labels']}")
    print(f"ok: end-to-end assertions passed in {time.monotonic() - began:.0f}s")


if __name__ == "__main__":
    main()
