# Sourced by the CI scripts that need tools from PyPI: `ci_venv NAME REQUIREMENTS PROBE...`
# sets CI_VENV to a virtualenv holding REQUIREMENTS, cached by their hash under
# ${TVE_CI_CACHE:-~/.cache/teams-voice-exporter}, and (re)installs it unless PROBE (a
# command run with the virtualenv's bin/ first in PATH) succeeds.
ci_venv() {
  local name="$1" requirements="$2"
  shift 2
  local hash
  hash="$(sha256sum "${requirements}" | cut -c1-16)"
  CI_VENV="${TVE_CI_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/teams-voice-exporter}/${name}-venv-${hash}"
  if [[ -x "${CI_VENV}/bin/python" ]] && PATH="${CI_VENV}/bin:${PATH}" "$@" >/dev/null 2>&1; then
    return 0
  fi
  echo "--- installing ${name} tools into ${CI_VENV}"
  rm -rf "${CI_VENV}"
  mkdir -p "$(dirname "${CI_VENV}")"
  if ! python3 -m venv "${CI_VENV}" 2>/dev/null; then
    # Debian's python3 needs its venv module installed separately.
    rm -rf "${CI_VENV}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "${CI_VENV}"
  fi
  "${CI_VENV}/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "${requirements}"
}
