#!/usr/bin/env python3
"""A week of call destinations for the end-to-end check's Prometheus (.ci/e2e-prometheus.sh).

The toll-fraud alerts (alerts/teams-destinations.rules.yml) fire for outbound calls to a
country that had none between 8 days and 1 day ago, and only while the log's by-country
series existed at both offsets (the guard that keeps a fresh Prometheus quiet). A
Prometheus started for a few minutes has no such history, so the end-to-end check gives it
one, the way an operator would with a long-running Prometheus or a backfill. While
Prometheus scrapes the exporter (from its start, as in a deployment), this script

1. waits for the exporter (--demo --simulate.toll-fraud) to be ready and reads its
   /metrics for --settle seconds, collecting every outbound series of
   teams_direct_routing_calls_by_country_total and teams_pstn_calls_by_country_total
   (the tenant's normal destinations; the simulator's fraud only starts after
   --simulate.toll-fraud-after, and --fraud-country is left out in any case);
2. writes those series, with the scrape's job and instance labels, as counters rising by
   one call every 2 minutes from 8 days and 1 hour ago to 23 hours ago (so both offsets
   of the rule have samples for the whole run), in OpenMetrics text;
3. turns them into blocks with `promtool tsdb create-blocks-from openmetrics` beside
   Prometheus' data directory, moves them into it (a rename: Prometheus never sees half a
   block) and, with --prometheus, waits until Prometheus, which loads new blocks once a
   minute, answers for them.

The rules themselves are loaded unchanged: the normal countries were "called in the week
before" and stay quiet, the fraud country was not and fires once it has 5 calls in 30
minutes, and the spend and international alerts (a week of their recording rules needed)
stay quiet. The guard's fresh-Prometheus case is covered by the promtool unit tests
(alerts/tests/teams-destinations.test.yml).

Standard library only.
"""

import argparse
import json
import os
import shutil
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

FAMILIES = ("teams_direct_routing_calls_by_country_total", "teams_pstn_calls_by_country_total")
# The history covers both offsets of the rule (8d, 1d) for this long after it is written.
RUN_ALLOWANCE_SECONDS = 3600
STEP_SECONDS = 120
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def parse_labels(text):
    labels = {}
    position = 0
    text = text or ""
    while position < len(text):
        match = LABEL.match(text, position)
        if not match:
            raise ValueError(f"cannot parse labels {text!r}")
        labels[match.group(1)] = match.group(2)
        position = match.end()
    return labels


def outbound_series(exposition, fraud_country):
    """(family, labels) of every outbound by-country series with a known country."""
    found = set()
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match or match.group(1) not in FAMILIES:
            continue
        labels = parse_labels(match.group(2))
        country = labels.get("country", "unknown")
        if labels.get("direction") != "outbound" or country in ("unknown", fraud_country):
            continue
        found.add((match.group(1), tuple(sorted(labels.items()))))
    return found


def escape(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(series, job, instance, now):
    start = now - 8 * 86400 - 3600
    end = now - 86400 + RUN_ALLOWANCE_SECONDS
    lines = []
    for family, labels in sorted(series):
        labels = dict(labels, job=job, instance=instance)
        text = ",".join(f'{name}="{escape(value)}"' for name, value in sorted(labels.items()))
        for calls, timestamp in enumerate(range(start, end, STEP_SECONDS)):
            lines.append(f"{family}{{{text}}} {calls} {timestamp}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def read_metrics(exporter):
    with urllib.request.urlopen(f"{exporter}/metrics", timeout=10) as response:
        return response.read().decode()


def wait_ready(exporter, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{exporter}/-/ready", timeout=5):
                return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            fail(f"the exporter at {exporter} was not ready within {seconds}s")
        time.sleep(1)


def wait_loaded(prometheus, expected, seconds):
    """Waits until `prometheus` answers for the `expected` series of the history at both
    offsets the toll-fraud rules look at (a reload may come between two blocks' renames)."""
    deadline = time.monotonic() + seconds
    while True:
        found = {offset: count_at(prometheus, offset) for offset in ("1d", "8d")}
        if min(found.values()) >= expected:
            return
        if time.monotonic() > deadline:
            fail(
                f"Prometheus at {prometheus} shows {found} of the {expected} history series "
                f"{seconds:.0f}s after their blocks were moved into its storage"
            )
        time.sleep(2)


def count_at(prometheus, offset):
    """How many history series `prometheus` has a sample of `offset` ago (0 if it cannot say)."""
    query = "count({__name__=~\"%s\"} offset %s)" % ("|".join(FAMILIES), offset)
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            result = json.load(response)["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0
    except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
        print(f"asking Prometheus: {error}", file=sys.stderr)
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exporter", required=True)
    parser.add_argument("--data-dir", required=True, help="Prometheus' --storage.tsdb.path")
    parser.add_argument("--prometheus", help="the running Prometheus' URL: wait until it has loaded the history")
    parser.add_argument("--load-wait", type=float, default=180, help="seconds to wait for Prometheus to load the history")
    parser.add_argument("--job", required=True, help="the scrape job's name")
    parser.add_argument("--instance", required=True, help="the scrape target's host:port")
    parser.add_argument("--fraud-country", required=True)
    parser.add_argument("--promtool", default="promtool")
    parser.add_argument("--settle", type=float, default=20, help="seconds to keep reading /metrics for destinations after ready")
    parser.add_argument("--ready-wait", type=float, default=120)
    args = parser.parse_args()

    wait_ready(args.exporter, args.ready_wait)
    series = set()
    deadline = time.monotonic() + args.settle
    while True:
        try:
            series |= outbound_series(read_metrics(args.exporter), args.fraud_country)
        except (OSError, urllib.error.URLError) as error:
            print(f"reading /metrics: {error}", file=sys.stderr)
        families = {family for family, _ in series}
        if time.monotonic() > deadline and families == set(FAMILIES):
            break
        if time.monotonic() > deadline + args.ready_wait:
            missing = sorted(set(FAMILIES) - families)
            fail(f"no outbound series with a country in {', '.join(missing)} within {args.settle + args.ready_wait:.0f}s of ready")
        time.sleep(2)
    for family in FAMILIES:
        countries = sorted({dict(labels)["country"] for f, labels in series if f == family})
        print(f"history: {family}: {len(countries)} countries called in the week before: {' '.join(countries)}")

    now = int(time.time())
    with tempfile.NamedTemporaryFile("w", suffix=".om", delete=False) as f:
        f.write(openmetrics(series, args.job, args.instance, now))
        path = f.name
    os.makedirs(args.data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".history-", dir=os.path.dirname(os.path.abspath(args.data_dir)))
    try:
        # Blocks of a day: a handful for the week instead of one per 2 hours.
        result = subprocess.run(
            [args.promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h", path, staging],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            fail(f"promtool tsdb create-blocks-from openmetrics failed:\n{result.stdout}{result.stderr}")
        blocks = sorted(os.listdir(staging))
        for block in blocks:
            os.rename(os.path.join(staging, block), os.path.join(args.data_dir, block))
    finally:
        os.unlink(path)
        shutil.rmtree(staging, ignore_errors=True)
    if args.prometheus:
        wait_loaded(args.prometheus, len(series), args.load_wait)
    print(f"ok: {len(series)} outbound series backfilled from 8 days ago to 1 day ago into {args.data_dir}")


if __name__ == "__main__":
    main()
