# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/common.sh: install_cpu_stack VENV creates (or reuses) VENV with the CPU
# stack (a CPU torch==2.13.0 first, so nothing pulls CUDA wheels, then `pip install -e .[test]`: verl 0.9.1 without
# vLLM/CUDA, Ray, hydra, pytest). It reinstalls only when pyproject.toml changed since the last install into VENV.
# Progress goes to stderr with the prefix given as the second argument.

install_cpu_stack() {
  local venv="$1" prefix="${2:-[cpu_stack]}" python_bin="${PYTHON:-python3}" root want stamp
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ ! -x "$venv/bin/python" ]; then
    echo "$prefix creating virtualenv at $venv" >&2
    "$python_bin" -m venv "$venv"
  fi
  stamp="$venv/.legal-grpo-installed"
  want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "$prefix installing CPU torch==2.13.0 (first run only)" >&2
    "$venv/bin/python" -m pip install -q torch==2.13.0 >&2
  fi
  echo "$prefix installing -e .[test] (first run takes a few minutes)" >&2
  (cd "$root" && "$venv/bin/python" -m pip install -q -e ".[test]" >&2)
  echo "$want" > "$stamp"
}
