#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a cluster (issue #5):
#   - hadolint on the Dockerfile;
#   - the chart's copies of alerts/ and dashboards/ against the sources (helm/sync-files.sh --check);
#   - the Helm chart: strict lint, values schema, render of every value set in
#     helm/teams-voice-exporter/ci/, Kubernetes and Prometheus Operator schemas, and the
#     promised security settings (.ci/validate_deploy.py);
#   - the demo stack: `docker compose config` where the compose plugin exists, otherwise
#     a Compose-specification parser (.ci/validate_compose.py).
# Installs its tools from PyPI into a virtualenv cached by the requirements' hash.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

# shellcheck source=.ci/venv.sh
source .ci/venv.sh
ci_venv deploy .ci/deploy-requirements.txt python -c "import helm_python, kubernetes_validate, compose_spec, cloudcoil"
venv="${CI_VENV}"
py="${venv}/bin/python"

echo "--- hadolint Dockerfile"
"${venv}/bin/hadolint" --version
"${venv}/bin/hadolint" --failure-threshold style Dockerfile
echo "hadolint: no findings"

echo "--- chart files against alerts/ and dashboards/"
helm/sync-files.sh --check

echo "--- helm chart: lint, schema, render, Kubernetes validation"
"${py}" .ci/validate_deploy.py

echo "--- demo stack (deploy/compose)"
if docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/compose/compose.yaml config --quiet
  echo "docker compose config: valid"
fi
"${py}" .ci/validate_compose.py

echo "deploy checks passed in $((SECONDS - start))s"
