#!/usr/bin/env bash
# Builds taskrunner and runs the example CI job twice with a fresh state
# directory: the first run runs every step, the second skips them all.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$here/.." && go build -o "$work/bin/taskrunner" ./cmd/taskrunner)
export PATH="$work/bin:$PATH"
export TASKRUNNER_STATE_DIRECTORY="$work/state" TASKRUNNER_LOG_INFO=1
echo "== first run: every step runs"
"$here/ci.sh"
echo
echo "== second run: inputs unchanged, every step is skipped"
"$here/ci.sh"
