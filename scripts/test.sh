#!/usr/bin/env bash
# The project's test command: create or reuse .venv, install the CPU test stack, run pytest.
# Usage: bash scripts/test.sh [--no-vllm] [pytest args...]
#   --no-vllm (or LEGAL_NO_VLLM=1): skip the real-vLLM tier (tests marked `vllm`) for quick iteration.
# The real-vLLM tier runs a CPU build of vLLM from its own virtualenv (.venv-vllm, scripts/vllm_venv.sh; first run
# installs ~3.5 GB), so it needs a CPU with AVX-512; without one it is left out with one line and the rest runs.
set -euo pipefail

args=()
for arg in "$@"; do
  if [ "$arg" = "--no-vllm" ]; then LEGAL_NO_VLLM=1; else args+=("$arg"); fi
done
set -- ${args[@]+"${args[@]}"}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv="${VENV:-$repo_root/.venv}"
# shellcheck source=scripts/cpu_stack.sh
source "$repo_root/scripts/cpu_stack.sh"
install_cpu_stack "$venv" "[test.sh]"
py="$venv/bin/python"

# The real-vLLM tier: its venv (created or reused) is handed to the tests; LEGAL_VLLM_TIER=off leaves it out.
if [ "${LEGAL_NO_VLLM:-0}" = "1" ]; then
  echo "[test.sh] real-vLLM tier skipped (--no-vllm / LEGAL_NO_VLLM=1)"
  export LEGAL_VLLM_TIER=off
elif ! grep -qw avx512f "${LEGAL_CPUINFO:-/proc/cpuinfo}" 2>/dev/null; then  # LEGAL_CPUINFO: tests only
  echo "[test.sh] real-vLLM tier not run: this CPU lacks AVX-512 (avx512f), which vLLM's CPU build needs"
  export LEGAL_VLLM_TIER=off
else
  LEGAL_VLLM_PYTHON="$(bash scripts/vllm_venv.sh | tail -n 1)"
  export LEGAL_VLLM_PYTHON LEGAL_VLLM_TIER=on
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
