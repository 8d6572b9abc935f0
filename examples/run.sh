#!/usr/bin/env bash
# Builds taskrunner and runs the example CI job twice with a fresh state
# directory: the first run runs every step, the second skips them all. Each
# run is one build: the job runs under one toplevel taskrunner, `ci`. After
# each run, `taskrunner --summary` shows how each step ended and why it ran.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$here/.." && go build -o "$work/bin/taskrunner" ./cmd/taskrunner)
export PATH="$work/bin:$PATH"
export TASKRUNNER_STATE_DIRECTORY="$work/state" TASKRUNNER_LOG_INFO=1
echo "== first run: every step runs"
taskrunner -n ci "$here/ci.sh"
echo
taskrunner --summary
echo
echo "== second run: inputs unchanged, every step is skipped"
taskrunner -n ci "$here/ci.sh"
echo
taskrunner --summary
