#!/usr/bin/env bash
# Copies the repository's alerting rules and Grafana dashboards into the chart, which can
# only read files inside itself. alerts/ and dashboards/ are the source of truth; the
# chart's files/ hold byte-for-byte copies.
#
#   helm/sync-files.sh          copy, and delete copies whose source is gone
#   helm/sync-files.sh --check  change nothing; exit 1 listing missing, extra or differing
#                               copies (CI runs this)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
chart="${root}/helm/teams-voice-exporter/files"

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

problems=0
# Each line: source directory, file pattern, copy directory.
while read -r src pattern dst; do
  shopt -s nullglob
  sources=("${root}/${src}"/${pattern})
  copies=("${chart}/${dst}"/${pattern})
  shopt -u nullglob
  for file in "${sources[@]}"; do
    name="$(basename "${file}")"
    copy="${chart}/${dst}/${name}"
    if [[ ! -f "${copy}" ]]; then
      reason="missing"
    elif ! cmp -s "${file}" "${copy}"; then
      reason="differs from ${src}/${name}"
    else
      continue
    fi
    if ${check}; then
      echo "drift: helm/teams-voice-exporter/files/${dst}/${name} ${reason}" >&2
      problems=$((problems + 1))
    else
      mkdir -p "${chart}/${dst}"
      cp "${file}" "${copy}"
      echo "copied ${src}/${name}"
    fi
  done
  for copy in "${copies[@]}"; do
    name="$(basename "${copy}")"
    [[ -f "${root}/${src}/${name}" ]] && continue
    if ${check}; then
      echo "drift: helm/teams-voice-exporter/files/${dst}/${name} has no source ${src}/${name}" >&2
      problems=$((problems + 1))
    else
      rm -- "${copy}"
      echo "removed ${dst}/${name} (its source is gone)"
    fi
  done
done <<'LIST'
alerts *.rules.yml alerts
dashboards *.json dashboards
LIST

if ((problems > 0)); then
  echo "the chart's copies of alerts/ and dashboards/ have drifted (${problems} file(s)); run helm/sync-files.sh and commit the result" >&2
  exit 1
fi
if ${check}; then
  echo "chart files match alerts/ and dashboards/"
fi
