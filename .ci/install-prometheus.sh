#!/usr/bin/env bash
# Installs Debian's prometheus (promtool, prometheus) and, with --alertmanager, its
# prometheus-alertmanager (amtool), when a command the caller needs is missing; for
# .ci/e2e-prometheus.sh and .ci/backfill-prometheus.sh.
# The packages' services may or may not start (no systemd in containers): the scripts run
# the binaries themselves on free loopback ports.
set -euo pipefail

packages=(prometheus)
commands=(promtool prometheus)
if [ "${1:-}" = "--alertmanager" ]; then
  packages+=(prometheus-alertmanager)
  commands+=(amtool)
fi
for command in "${commands[@]}"; do
  if ! command -v "$command" >/dev/null; then
    echo "--- installing Debian's ${packages[*]} (no ${command})"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${packages[@]}" >/dev/null
    exit 0
  fi
done
