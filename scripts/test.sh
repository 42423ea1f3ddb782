#!/usr/bin/env bash
# The project's test command: create or reuse .venv, install the CPU test stack, run pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv="${VENV:-$repo_root/.venv}"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[test.sh] creating virtualenv at $venv"
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"

# Install only when pyproject.toml changed since the last install into this venv.
stamp="$venv/.legal-grpo-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$py" -m pip install -q --upgrade pip
  if ! "$py" -c "import torch" >/dev/null 2>&1; then
    # A CPU build: installing verl first would pull several GB of CUDA wheels.
    echo "[test.sh] installing CPU torch==2.13.0 (first run only)"
    "$py" -m pip install -q torch==2.13.0
  fi
  echo "[test.sh] installing -e .[test] (first run takes a few minutes)"
  "$py" -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

set +e
"$py" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "[test.sh] pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
