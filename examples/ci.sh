#!/usr/bin/env bash
# A small CI job: every step runs under taskrunner, which prefixes its lines,
# logs them, and skips the step when the inputs it declares are unchanged.
set -euo pipefail
cd "$(dirname "$0")/demo"

# A step declares its inputs with `snapshot`; when they are the same as at
# its last success, the step ends right there.
taskrunner -n build bash -euc '
  snapshot src --raw "compiler-v1"
  echo "compiling $(ls src | wc -l) files"
  mkdir -p ../out && cat src/*.txt > ../out/app.txt
  # A nested task: its lines carry its own name, one level deep.
  taskrunner -n docs bash -euc "snapshot src/greeting.txt; echo \"docs: \$(wc -w < src/greeting.txt) words\""
'

# Two steps in parallel.
taskrunner -n test bash -euc 'snapshot src; grep -q hello src/greeting.txt && echo "tests passed"' &
taskrunner -n lint bash -euc 'snapshot src; echo "lint clean"' &
wait
