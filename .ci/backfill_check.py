#!/usr/bin/env python3
"""Checks a Prometheus started on backfilled blocks against the simulator's ground truth.

For the end of the range: every series of teams_direct_routing_calls_total and
teams_pstn_calls_total's total equal the counts computed here from the simulator's rows
(/_sim/ground-truth and /_sim/pstn-ground-truth, by call start). For every day of the range:
increase(...[1d]) at the day's end equals the calls that started that day. Exits 1 with
what differs.
"""

import argparse
import collections
import datetime
import json
import sys
import time
import urllib.parse
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def query(prometheus, expression, at):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode(
        {"query": expression, "time": at.timestamp()}
    )
    answer = get(url)
    if answer["status"] != "success":
        raise RuntimeError(f"{expression}: {answer}")
    return answer["data"]["result"]


def or_unknown(value):
    return value if value not in (None, "") else "unknown"


def call_key(row):
    """The labels of teams_direct_routing_calls_total the exporter gives a row."""
    successful = {True: "true", False: "false"}.get(row.get("successful_call"), "unknown")
    code = row.get("final_sip_code")
    return (
        or_unknown((row.get("trunk_fqdn") or "").lower()),
        or_unknown(row.get("call_type")),
        "unknown" if code is None else str(code),
        successful,
        or_unknown(row.get("media_path_location")),
    )


def wait_ready(prometheus):
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{prometheus}/-/ready", timeout=5).status == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("Prometheus did not become ready")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--from", dest="start", required=True)
    parser.add_argument("--to", dest="end", required=True)
    args = parser.parse_args()
    start, end = parse_time(args.start), parse_time(args.end)
    wait_ready(args.prometheus)

    since = urllib.parse.quote(args.start)
    in_range = lambda row: start <= parse_time(row["start"]) < end
    dr = [r for r in get(f"{args.simulator}/_sim/ground-truth?started_from={since}")["rows"] if in_range(r)]
    pstn = get(f"{args.simulator}/_sim/pstn-ground-truth?started_from={since}")["rows"]
    pstn = [r for r in pstn if in_range(r)]
    problems = []

    expected = collections.Counter(call_key(row) for row in dr)
    got = {}
    for sample in query(args.prometheus, "teams_direct_routing_calls_total", end):
        m = sample["metric"]
        key = (m["trunk_fqdn"], m["call_type"], m["final_sip_code"], m["successful"], m["media_path_location"])
        got[key] = float(sample["value"][1])
    for key in sorted(set(expected) | set(got)):
        if got.get(key, 0.0) != expected.get(key, 0):
            problems.append(f"calls{key}: Prometheus {got.get(key)} vs ground truth {expected.get(key, 0)}")
    pstn_total = query(args.prometheus, "sum(teams_pstn_calls_total)", end)
    pstn_got = float(pstn_total[0]["value"][1]) if pstn_total else 0.0
    if pstn_got != len(pstn):
        problems.append(f"PSTN calls: Prometheus {pstn_got} vs ground truth {len(pstn)}")
    print(f"end of range: {len(got)} Direct Routing call series, {sum(expected.values())} calls; {len(pstn)} PSTN calls")

    day = datetime.timedelta(days=1)
    at = start + day
    days = 0
    while at <= end:
        calls = sum(1 for row in dr if at - day <= parse_time(row["start"]) < at)
        result = query(args.prometheus, "sum(increase(teams_direct_routing_calls_total[1d]))", at)
        increase = float(result[0]["value"][1]) if result else 0.0
        if abs(increase - calls) > 1e-6:
            problems.append(f"increase over the day ending {at.isoformat()}: {increase} vs {calls} calls")
        days += 1
        at += day
    print(f"increase() over {days} days checked")

    for problem in problems:
        print("FAIL", problem)
    if problems:
        sys.exit(1)
    print("OK: Prometheus on the backfilled blocks equals the simulator's ground truth")


if __name__ == "__main__":
    main()
