#!/usr/bin/env bash
# The content-safety pipeline on the CPU, every stage for real with a tiny random model on the shipped sample:
# SFT (verl's SFT trainer, LoRA) -> export (verl's model merger) -> GRPO from the adapter (verl's trainer, a checkpoint
# and a resumed step) -> export -> evaluate (recipes.evaluate --backend hf, checked against the trainer's own last
# validation) -> a rejection-sampling round -> one more SFT round -> compare (table + plot across the stages).
#
# Usage: bash scripts/rehearse_pipeline.sh [--config NAME] [--no-install] [--out DIR]
#   --config NAME   stage settings in configs/ (default rehearse_pipeline: steps, learning rates, sizes)
#   --out DIR       output directory (default outputs/rehearse/pipeline)
#   --no-install    never create .venv / install the CPU stack
# One line per stage as it starts and ends (the trainers' own progress lines indented under it); writes
# DIR/summary.json ({"ok", "stages": {"sft": {"loss_first", "loss_last", …}, "grpo": {"steps", …}, "export":
# {"hf_dir", …}, "evaluate": {"metrics", …}, "rejection": {"kept_share", …}, …}}); exit 0 only when every stage ran
# and its checks held. 6-12 minutes on a shared 2-core box (measured 334 s and 708 s). A judge for safety_grpo comes
# from JUDGE_BASE_URL or vLLM's CPU build (AVX-512); without either, the GRPO stage scores the reasoning by n-grams
# and says so.
set -euo pipefail

tool=rehearse_pipeline
default_config=rehearse_pipeline
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"  # options, repo root, venv on PATH, say/die, the stack install

if ! "$py" -c "import hydra, omegaconf, verl, ray, transformers, peft" >/dev/null 2>&1; then
  [ "$install" -eq 1 ] || die "the pipeline needs the CPU stack in '$py' and --no-install was given"
  ensure_cpu_stack
fi
[ -f "configs/$config.yaml" ] || die "no configs/$config.yaml"
say "the safety pipeline on the CPU (settings configs/$config.yaml): sft -> export -> grpo -> export -> evaluate ->" \
    "rejection -> sft round 2 -> compare"
exec "$py" -m recipes.rehearsal.rehearse_pipeline --config "configs/$config.yaml" ${overrides[@]+"${overrides[@]}"}
