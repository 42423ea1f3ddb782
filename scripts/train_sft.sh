#!/usr/bin/env bash
# The SFT stage (content-safety recipe): LoRA SFT through verl's own SFT trainer, one command on a GPU node.
#
# Usage: bash scripts/train_sft.sh [--config NAME] [--dry-run | --rehearse [--steps N]] [--no-install] [overrides...]
#   --config NAME   a file in configs/ (default safety_sft)
#   --dry-run       CPU is enough: compose the config, run the checks, print the exact trainer command, exit 0 if
#                   all checks pass (missing data is a warning here; needs only what `bash scripts/test.sh` installs)
#   --rehearse      CPU is enough: verl's SFT trainer runs N real LoRA steps (--steps, default 2) of a tiny random
#                   model on the config's shipped sample (its SFT split), then verl's merger exports the checkpoint;
#                   only model, data, sizes, device and the learning rate change (each printed); metrics in
#                   outputs/rehearse/<config>/metrics.jsonl, export in outputs/rehearse/<config>/checkpoints/hf; last
#                   line `sft rehearsal passed: …` (the loss fell, the adapter exported), exit 0
#   --no-install    never create .venv / install .[train] (or the CPU stack)
# Env: RUN_NAME (reuse to resume) or RUN_TAG (suffix after -MMDD); WANDB_API_KEY or WANDB_MODE=offline; PYTHON_BIN.
# Writes checkpoints/<project>/<run>/global_step_<N>/, then exports the latest to checkpoints/<project>/<run>/hf
# (+ hf/lora_adapter) with verl's model merger; the GRPO stage starts from that (README "Stages").
set -euo pipefail

tool=train_sft
default_config=safety_sft
takes_rehearse=1
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"  # options, repo root, venv on PATH, say/die, the stack install

if [ "$rehearse" -eq 1 ]; then
  [ "$wall" -eq 0 ] || die "--wall is for the GRPO launch (scripts/train_grpo.sh); the SFT stage rehearses with --rehearse"
  if ! "$py" -c "import hydra, omegaconf, verl, peft, transformers" >/dev/null 2>&1; then
    [ "$install" -eq 1 ] || die "the rehearsal needs the CPU stack in '$py' and --no-install was given"
    ensure_cpu_stack
  fi
  work="${LEGAL_REHEARSE_DIR:-$repo_root/outputs/rehearse}"  # where the rehearsal writes (tests use a temp dir)
  mkdir -p "$work"
  "$py" tests/helpers/tiny_model.py "$work/tiny_qwen" >/dev/null 2>&1 \
    || die "could not build the tiny model (tests/helpers/tiny_model.py)"
  say "rehearsal of $config: $steps real SFT step(s) on the CPU, then the export; outputs in $work/$config"
  set +e
  "$py" -m recipes.rehearsal.rehearse_sft --config "$config" --model "$work/tiny_qwen" --data "$work/data-$config" \
    --out "$work/$config" --steps "$steps" ${overrides[@]+"${overrides[@]}"}
  status=$?
  set -e
  exit "$status"
fi

if [ "$dry_run" -eq 1 ]; then
  need_dry_run_stack
elif ! "$py" -c "import verl, torch, peft, hydra" >/dev/null 2>&1; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    die "no GPU here and the training stack (verl, torch, peft) is missing — use --dry-run to check the config"
  elif [ "$install" -eq 0 ]; then
    die "the training stack (verl, torch, peft, hydra) is missing in '$py' and --no-install was given"
  else
    install_train_stack "installing the training stack into $venv: pip install -e '.[train]' (several GB, typically" \
      "10-20 minutes)"
  fi
fi

# ---- one composition -> the command and the checks (CPU, offline: batch arithmetic, LoRA, the data file and its
# size), by recipes/launch/sft_launch.py on recipes/launch/commands.py's composition. Check lines go to stderr.
plan_args=(plan --config "$config")
[ "$dry_run" -eq 0 ] || plan_args+=(--dry-run)
plan="$("$py" -m recipes.sft_launch "${plan_args[@]}" ${overrides[@]+"${overrides[@]}"})" \
  || die "cannot launch config '$config' with the given overrides (error above)"
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
