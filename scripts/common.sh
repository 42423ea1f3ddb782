# shellcheck shell=bash
# Sourced (not run) by scripts/train_grpo.sh and scripts/train_sft.sh with their arguments: the repo root, the
# options both take, the project venv first on PATH, and the one-time install of the training stack.
# The sourcing script sets before sourcing: `tool` (its message prefix), `default_config`, and `takes_rehearse=1`
# when it has --rehearse. It gets: repo_root, config, dry_run, rehearse, install, overrides, venv, py, say, die,
# need_dry_run_stack, ensure_cpu_stack, install_train_stack; the sourcing scripts with takes_rehearse=1 also get
# wall (--wall) and steps (--steps N). --help prints the sourcing script's header comment.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

say() { echo "[$tool] $*"; }
die() { echo "[$tool] $*" >&2; exit 1; }

config="${CONFIG:-$default_config}"
config_given=$([ -n "${CONFIG:-}" ] && echo 1 || echo 0)  # the user chose the config (--config or CONFIG)
dry_run=0
rehearse=0
wall=0
steps=2
install=1
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; config_given=1; shift 2 ;;
    --config=*) config="${1#*=}"; config_given=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --rehearse)
      if [ "${takes_rehearse:-0}" -eq 1 ]; then rehearse=1; else overrides+=("$1"); fi
      shift ;;
    --wall)
      if [ "${takes_rehearse:-0}" -eq 1 ]; then wall=1; rehearse=1; else overrides+=("$1"); fi
      shift ;;
    --steps)
      if [ "${takes_rehearse:-0}" -eq 1 ]; then steps="${2:-}"; shift 2; else overrides+=("$1"); shift; fi ;;
    --steps=*)
      if [ "${takes_rehearse:-0}" -eq 1 ]; then steps="${1#*=}"; else overrides+=("$1"); fi
      shift ;;
    --no-install) install=0; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) overrides+=("$1"); shift ;;
  esac
done

# ---- set-up: the project venv first on PATH, so `python3` in every command the script runs is the right one.
venv="${VENV:-$repo_root/.venv}"
if [ -x "$venv/bin/python" ]; then export PATH="$venv/bin:$PATH"; fi
py="${PYTHON_BIN:-python3}"
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

# What a --dry-run needs: hydra + verl (the CPU stack); set up here when missing unless --no-install.
need_dry_run_stack() {
  "$py" -c "import hydra, omegaconf, verl" >/dev/null 2>&1 && return 0
  [ "$install" -eq 1 ] \
    || die "the dry run needs hydra + verl in '$py' and --no-install was given — drop it (or run \`bash scripts/test.sh\`)"
  say "setting up the CPU stack in $venv (a CPU torch, then the project; a few minutes, once)"
  ensure_cpu_stack
}

# The CPU stack (CPU torch, then `pip install -e .[test]`) in $venv, created when missing; from here on it is used.
# shellcheck source=scripts/cpu_stack.sh
source "$repo_root/scripts/cpu_stack.sh"
ensure_cpu_stack() {
  install_cpu_stack "$venv" "[$tool]"
  export PATH="$venv/bin:$PATH"
  py="${PYTHON_BIN:-python3}"
}

# pip install -e '.[train]' into $venv (created when missing) and use it from here on; each argument is one line
# saying what is installed.
install_train_stack() {
  local line
  for line in "$@"; do say "$line"; done
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -e ".[train]"
  export PATH="$venv/bin:$PATH"
  py="${PYTHON_BIN:-python3}"
}
