# Sourced (from the repository's root) by the scripts that start the exporter, the simulator
# or Prometheus: the CI's Prometheus checks (.ci/*-prometheus.sh) and the load runs
# (scripts/*load.sh). Gives them a work directory ($work), the processes they start
# ($pids, appended to), both removed on exit, and free loopback ports.
# shellcheck shell=bash

work=$(mktemp -d)
pids=()
# Stops every process started (and waits for it), then removes the work directory; on exit,
# or earlier when a script is done with them.
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
# Interrupted: exit, which runs the cleanup once.
trap 'exit 130' INT TERM

# A loopback port free now (the process given it binds it moments later).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
