#!/usr/bin/env bash
# The SFT stage (content-safety recipe): LoRA SFT through verl's own SFT trainer, one command on a GPU node.
#
# Usage: bash scripts/train_sft.sh [--config NAME] [--dry-run] [--no-install] [hydra overrides...]
#   --config NAME   a file in configs/ (default safety_sft)
#   --dry-run       CPU is enough: compose the config, run the checks, print the exact trainer command, exit 0 if
#                   all checks pass (missing data is a warning here; needs only what `bash scripts/test.sh` installs)
#   --no-install    never create .venv / install .[train]
# Env: RUN_NAME (reuse to resume) or RUN_TAG (suffix after -MMDD); WANDB_API_KEY or WANDB_MODE=offline; PYTHON_BIN.
# Writes checkpoints/<project>/<run>/global_step_<N>/, then exports the latest to checkpoints/<project>/<run>/hf
# (+ hf/lora_adapter) with verl's model merger; the GRPO stage starts from that (README "Stages").
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

config="${CONFIG:-safety_sft}"
dry_run=0
install=1
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --config=*) config="${1#*=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) overrides+=("$1"); shift ;;
  esac
done
say() { echo "[train_sft] $*"; }
die() { echo "[train_sft] $*" >&2; exit 1; }

# ---- set-up: the project venv first on PATH, so `python3` in the trainer command is the right one.
venv="${VENV:-$repo_root/.venv}"
[ -x "$venv/bin/python" ] && export PATH="$venv/bin:$PATH"
py="${PYTHON_BIN:-python3}"
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

if [ "$dry_run" -eq 1 ]; then
  "$py" -c "import hydra, omegaconf, verl" >/dev/null 2>&1 \
    || die "the dry run needs hydra + verl in '$py' — run \`bash scripts/test.sh\` once (installs the CPU stack)"
elif ! "$py" -c "import verl, torch, peft, hydra" >/dev/null 2>&1; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    die "no GPU here and the training stack (verl, torch, peft) is missing — use --dry-run to check the config"
  elif [ "$install" -eq 0 ]; then
    die "the training stack (verl, torch, peft, hydra) is missing in '$py' and --no-install was given"
  else
    say "installing the training stack into $venv: pip install -e '.[train]' (several GB, typically 10-20 minutes)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -e ".[train]"
    export PATH="$venv/bin:$PATH"
    py="${PYTHON_BIN:-python3}"
  fi
fi

# ---- one composition -> the command and the checks (CPU, offline: batch arithmetic, LoRA, the data file and its
# size), by recipes/sft_launch.py on recipes/commands.py's composition. Check lines go to stderr.
plan_args=(plan --config "$config")
[ "$dry_run" -eq 0 ] || plan_args+=(--dry-run)
plan="$("$py" -m recipes.sft_launch "${plan_args[@]}" ${overrides[@]+"${overrides[@]}"})" \
  || die "config '$config' does not compose with the given overrides (error above)"
eval "$plan"
check_status="$PLAN_CHECK_FAILED"
trainer_line="$(printf '%q ' "${PLAN_TRAINER_CMD[@]}")"
export_line="$(printf '%q ' "${PLAN_EXPORT_CMD[@]}")"

if [ "$dry_run" -eq 1 ]; then
  say "dry run: the commands a real run would execute:"
  echo "  $trainer_line"
  echo "  $export_line"
  say "checkpoints: $PLAN_CHECKPOINT_DIR/global_step_<N>/; the GRPO stage reads $PLAN_CHECKPOINT_DIR/hf (+ lora_adapter)"
  [ "$check_status" -eq 0 ] || die "checks failed (see FAIL lines above)"
  say "dry run OK"
  exit 0
fi
[ "$check_status" -eq 0 ] || die "checks failed (see FAIL lines above) — nothing was started"

gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
fi
[ "$gpus" -ge "$PLAN_GPUS" ] \
  || die "the config trains on $PLAN_GPUS GPU(s) (trainer.n_gpus_per_node), this machine has $gpus — run on a GPU node, or use --dry-run"

say "run $PLAN_RUN_NAME on $PLAN_GPUS GPU(s): $trainer_line"
"${PLAN_TRAINER_CMD[@]}"

# ---- export for the GRPO stage: verl's merger on the latest checkpoint -> $PLAN_CHECKPOINT_DIR/hf (+ lora_adapter).
say "exporting: $export_line"
"${PLAN_EXPORT_CMD[@]}"
