#!/usr/bin/env bash
# Train a GRPO recipe (legal, safety): set-up, data, preflight, judge, trainer — one command on a fresh GPU node.
#
# Usage: bash scripts/train_grpo.sh [--config NAME] [--dry-run | --rehearse [--steps N] | --wall] [--no-install]
#                                    [hydra overrides...]
#   --config NAME   a file in configs/ (default legal_grpo; safety_grpo for the safety recipe; README "Configs")
#   --dry-run       CPU is enough: prepare data if missing, run the preflight, print every command, exit 0 if
#                   all checks pass (needs only what `bash scripts/test.sh` installs; never installs the GPU stack)
#   --rehearse      CPU is enough: the exact trainer command (multi-node: `ray job submit` to a local two-raylet
#                   cluster) runs verl's own trainer for N real GRPO steps (--steps, default 2) of a tiny random
#                   model on the config's shipped sample, checkpoints, then resumes for one more step; only model,
#                   data, sizes, device, rollout backend and Ray resources change (each printed); metrics of every
#                   step in outputs/rehearse/<config>/metrics.jsonl; last line `rehearsal passed: …`, exit 0
#   --wall          CPU is enough: the config's exact multi-GPU placement through Ray, up to the workers' model init
#                   (where a GPU is needed); one line per stage reached, exit 0 when it got there
#   --no-install    never create .venv / install .[train] (or the CPU stack)
# Without a GPU (and no RAY_ADDRESS / NNODES>1), a plain run says so and runs --rehearse instead, setting up the CPU
# stack itself (a CPU torch, then the project) when it is missing.
# Env: RUN_NAME (reuse to resume) or RUN_TAG (suffix after -MMDD); NNODES>1 or RAY_ADDRESS -> `ray job submit`;
#      JUDGE_BASE_URL (comma list of judge endpoints: no local judge is started, each must answer /health; when none
#      is loopback, the judge GPU trains too); JUDGE_STARTUP_TIMEOUT_S; WANDB_API_KEY or WANDB_MODE=offline;
#      PYTHON_BIN; LEGAL_REHEARSE_DIR (the rehearsal's output folder, default outputs/rehearse).
set -euo pipefail

tool=train_grpo
default_config=legal_grpo
takes_rehearse=1
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"  # options, repo root, venv on PATH, say/die, the stack install

gpu_count() {
  if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true; else echo 0; fi
}

# A multi-node config (trainer.nnodes > 1) is submitted to its cluster from any machine, GPUs here or not; read only
# when the stack is here to compose it (a fresh box has no cluster config to submit yet).
submits_to_cluster() {
  "$py" -c "import hydra, omegaconf, verl" >/dev/null 2>&1 \
    && "$py" -m recipes.commands plan --config "$config" ${overrides[@]+"${overrides[@]}"} 2>/dev/null \
       | grep -qx 'PLAN_MULTI_NODE=1'
}

# A machine without GPUs, and no cluster to submit to: the CPU rehearsal is what can run here (the embedded default).
embedded=0
if [ "$dry_run" -eq 0 ] && [ "$rehearse" -eq 0 ] && [ -z "${RAY_ADDRESS:-}" ] && [ "${NNODES:-1}" -le 1 ] \
   && [ "$(gpu_count)" -eq 0 ] && ! submits_to_cluster; then
  say "no GPU on this machine (nvidia-smi lists none): running the CPU rehearsal of $config instead — real verl" \
      "GRPO steps of a tiny random model on the shipped sample, a checkpoint and a resumed step"
  rehearse=1
  embedded=1
fi

if [ "$rehearse" -eq 1 ]; then
  [ "$wall" -eq 0 ] || [ "${#overrides[@]}" -eq 0 ] \
    || die "--wall rehearses the config as it is: it takes no hydra overrides (--rehearse takes them)"
  if ! "$py" -c "import hydra, omegaconf, verl, ray, transformers" >/dev/null 2>&1; then
    [ "$install" -eq 1 ] || die "the rehearsal needs the CPU stack in '$py' and --no-install was given"
    ensure_cpu_stack
  fi
  # The embedded default needs a judge; a CPU box without one (no JUDGE_BASE_URL, no vLLM CPU build) still gets a
  # first run: the same recipe scored by its rules alone.
  if [ "$embedded" -eq 1 ] && [ "$config_given" -eq 0 ] && [ -z "${JUDGE_BASE_URL:-}" ] \
     && [ -f "configs/${config}_rules.yaml" ]; then
    no_judge="$("$py" -c 'from recipes.trainer.cpu.judge import cpu_judge_unavailable as why; print(why() or "")')"
    if [ -n "$no_judge" ]; then
      say "no judge for $config here (JUDGE_BASE_URL unset; $no_judge): rehearsing ${config}_rules instead," \
          "the same recipe scored by its rules alone"
      asked_config="$config"
      config="${config}_rules"
    fi
  fi
  work="${LEGAL_REHEARSE_DIR:-$repo_root/outputs/rehearse}"  # where the rehearsal writes (tests use a temp dir)
  mkdir -p "$work"
  "$py" tests/helpers/tiny_model.py "$work/tiny_qwen" >/dev/null 2>&1 \
    || die "could not build the tiny model (tests/helpers/tiny_model.py)"
  # the config's own shipped sample (recipe.sample_*), prepared by the rehearsal when missing
  args=(--config "$config" --model "$work/tiny_qwen" --data "$work/data-$config")
  if [ "$wall" -eq 1 ]; then
    say "rehearsal of $config up to the GPU wall: its exact placement through Ray, tiny model and sample data in $work"
    args+=(--wall --log "$work/$config.log")
  else
    say "rehearsal of $config: $steps real GRPO step(s) on the CPU, then a resumed one; outputs in $work/$config"
    args+=(--steps "$steps" --out "$work/$config")
  fi
  set +e
  "$py" -m recipes.rehearse "${args[@]}" ${overrides[@]+"${overrides[@]}"}
  status=$?
  set -e
  if [ "$embedded" -eq 1 ]; then
    say "metrics of every step: $work/$config/metrics.jsonl (rollouts: $work/$config/rollouts/)." \
        "To train for real, on a GPU node: bash scripts/train_grpo.sh --config ${asked_config:-$config}"
  fi
  exit "$status"
fi

if [ "$dry_run" -eq 1 ]; then
  need_dry_run_stack
elif ! "$py" -c "import verl, vllm, ray, hydra" >/dev/null 2>&1; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    say "no GPU here: not installing the GPU stack (use --dry-run to check the config on a CPU box)"
    "$py" -c "import hydra, omegaconf, verl" >/dev/null 2>&1 \
      || die "no GPU and no CPU stack in '$py' — run \`bash scripts/test.sh\`, then bash scripts/train_grpo.sh --dry-run"
  elif [ "$install" -eq 0 ]; then
    die "the training stack (verl[vllm], ray, hydra) is missing in '$py' and --no-install was given"
  else
    install_train_stack "installing the training stack into $venv: pip install -e '.[train]' (verl[vllm]==0.9.1," \
      "torch, vllm; several GB, typically 10-20 minutes)"
  fi
fi

# ---- one composition -> every command (recipes/launch/commands.py).
plan="$("$py" -m recipes.commands plan --config "$config" ${overrides[@]+"${overrides[@]}"})" \
  || die "cannot launch config '$config' with the given overrides (error above)"
eval "$plan"

# ---- data: prepare the shipped sample when the configured set is missing.
if [ "$PLAN_DATA_MISSING" -eq 1 ]; then
  if [ "${#PLAN_PREP_CMD[@]}" -gt 0 ]; then
    say "data ${PLAN_DATA_FILES[*]} not found: preparing the shipped sample $PLAN_SAMPLE_INPUT" \
        "($(grep -c . "$PLAN_SAMPLE_INPUT") fictional records) so a first run works. For real data see README" \
        "\"${PLAN_DATA_README:-Data and evaluation}\"."
    say "$(printf '%q ' "${PLAN_PREP_CMD[@]}")"
    "${PLAN_PREP_CMD[@]}"
  else
    say "data ${PLAN_DATA_FILES[*]} not found (not a <dir>/train.parquet + test.parquet pair: not preparing the sample)"
  fi
fi

# ---- preflight (CPU, offline).
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
fi
preflight=("$py" -m recipes.preflight --config "$PLAN_CONFIG")
if [ "$dry_run" -eq 1 ] || [ "$gpus" -eq 0 ]; then
  preflight+=(--dry-run)
fi
preflight+=(${PLAN_OVERRIDES[@]+"${PLAN_OVERRIDES[@]}"})
say "preflight: $(printf '%q ' "${preflight[@]}")"
set +e
"${preflight[@]}"
preflight_status=$?
set -e

# The trainer's GPUs on one node (recipes.launch.commands.trainer_devices): with a judge of ours on judge.gpus, the
# visible GPUs minus the judge's; "" = CUDA_VISIBLE_DEVICES left as it is (rules / verl_pool modes, judges elsewhere).
train_devices="$PLAN_TRAIN_DEVICES"
gpu_note="$PLAN_GPU_NOTE"
trainer_line="$(printf '%q ' "${PLAN_TRAINER_CMD[@]}")"
[ -z "$train_devices" ] || trainer_line="CUDA_VISIBLE_DEVICES=$train_devices $trainer_line"

# Judges named by JUDGE_BASE_URL: every one must answer /health (single node; a multi-node job's reward workers
# reach them from the cluster, which this machine may not).
check_env_judges() {
  local url bad=0
  for url in ${PLAN_JUDGE_HEALTH_URLS[@]+"${PLAN_JUDGE_HEALTH_URLS[@]}"}; do
    if "$py" -m recipes.commands health --api-key-env "$PLAN_JUDGE_API_KEY_ENV" "$url"; then
      say "judge $url answers"
    else
      echo "[train_grpo] judge $url (from JUDGE_BASE_URL) does not answer — start it (bash scripts/serve_judge.sh" \
           "on that machine) or fix JUDGE_BASE_URL" >&2
      bad=1
    fi
  done
  return "$bad"
}

if [ "$PLAN_MULTI_NODE" -eq 1 ]; then
  commands=("$py -m recipes.commands runtime-env --config $PLAN_CONFIG --output $PLAN_RUNTIME_ENV" \
            "RAY_AUTH_MODE=$PLAN_RAY_AUTH_MODE $(printf '%q ' "${PLAN_SUBMIT_CMD[@]}")")
else
  commands=()
  if [ "$PLAN_JUDGE_FROM_ENV" -eq 1 ]; then
    commands+=("# no local judge: JUDGE_BASE_URL judges must answer ${PLAN_JUDGE_HEALTH_URLS[*]}")
  elif [ "$PLAN_JUDGE_MODE" = "external" ]; then
    commands+=("CUDA_VISIBLE_DEVICES=$PLAN_JUDGE_GPUS $(printf '%q ' "${PLAN_VLLM_CMD[@]}")  # unless $PLAN_JUDGE_HEALTH_URL answers")
  fi
  commands+=("$trainer_line")
fi

if [ "$dry_run" -eq 1 ]; then
  if [ "$PLAN_MULTI_NODE" -eq 0 ] && [ "$PLAN_JUDGE_FROM_ENV" -eq 1 ]; then
    check_env_judges || say "WARNING: a real run stops here until every JUDGE_BASE_URL judge answers"
  fi
  say "dry run: the commands a real run would execute:"
  for c in "${commands[@]}"; do echo "  $c"; done
  [ -z "$gpu_note" ] || say "$gpu_note"
  [ "$preflight_status" -eq 0 ] || die "preflight failed (see FAIL lines above)"
  say "dry run OK"
  exit 0
fi
[ "$preflight_status" -eq 0 ] || die "preflight failed (see FAIL lines above) — nothing was started"
if [ "$gpus" -eq 0 ] && [ "$PLAN_MULTI_NODE" -eq 0 ]; then
  die "no GPU found on this machine (nvidia-smi lists none): training needs $((PLAN_TRAIN_GPUS_PER_NODE + PLAN_JUDGE_GPUS_HERE)) GPU(s). Run on a GPU node, or use --dry-run to check the set-up here."
fi

# ---- multi-node: submit to the Ray cluster (judges come from JUDGE_BASE_URL / the config). The submission carries
# Ray's token (RAY_AUTH_MODE=token unless set otherwise; the token from RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).
if [ "$PLAN_MULTI_NODE" -eq 1 ]; then
  "$py" -m recipes.commands runtime-env --config "$PLAN_CONFIG" --output "$PLAN_RUNTIME_ENV"
  export RAY_AUTH_MODE="$PLAN_RAY_AUTH_MODE"
  say "submitting run $PLAN_RUNTIME_ENV / $PLAN_RUN_NAME: RAY_AUTH_MODE=$RAY_AUTH_MODE $(printf '%q ' "${PLAN_SUBMIT_CMD[@]}")"
  exec "${PLAN_SUBMIT_CMD[@]}"
fi

# ---- single node: the judge (unless one answers or JUDGE_BASE_URL names them), then the trainer.
# serve_judge.sh writes the server's pid to <log>.pid as soon as it starts it (before the up-to-15-min wait for
# /health) and stops it itself on its own timeout or interruption. This script runs it in the background and
# `wait`s, so Ctrl-C / TERM reach our traps at once; the EXIT trap then stops serve_judge.sh and the server whose
# pid it recorded — only a server this run caused to start, never a judge that was already answering or loading.
judge_pid_file="$PLAN_JUDGE_LOG.pid"
serve_pid=""
started_judge=0
earlier_pid=""
started_judge_pid=""
# shellcheck source=scripts/process_group.sh
source "$repo_root/scripts/process_group.sh"  # stop_group PID
stop_judge() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true  # its own trap stops the server it started
    wait "$serve_pid" 2>/dev/null || true
  fi
  if [ "$started_judge" -eq 1 ] && [ -z "$started_judge_pid" ]; then  # interrupted while serve_judge.sh ran
    started_judge_pid="$(cat "$judge_pid_file" 2>/dev/null || true)"
    [ "$started_judge_pid" != "$earlier_pid" ] || started_judge_pid=""
  fi
  if [ -n "$started_judge_pid" ] && { kill -0 -- "-$started_judge_pid" || kill -0 "$started_judge_pid"; } 2>/dev/null
  then
    say "stopping the judge we started (pid $started_judge_pid)"
    stop_group "$started_judge_pid"
  fi
  if [ -n "$started_judge_pid" ] && [ "$(cat "$judge_pid_file" 2>/dev/null)" = "$started_judge_pid" ]; then
    rm -f "$judge_pid_file"
  fi
}
trap stop_judge EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$PLAN_JUDGE_FROM_ENV" -eq 1 ]; then
  check_env_judges || die "not starting: every judge in JUDGE_BASE_URL must answer /health (see above)"
elif [ "$PLAN_JUDGE_MODE" = "external" ]; then
  if "$py" -m recipes.commands health --api-key-env "$PLAN_JUDGE_API_KEY_ENV" "$PLAN_JUDGE_HEALTH_URL"; then
    say "judge already answers at $PLAN_JUDGE_BASE_URL: using it (not stopping it at the end)"
  else
    # What the pid file holds before (a judge still loading from an earlier serve_judge.sh, or a stale entry):
    # only a pid serve_judge.sh writes during this run is a judge this run started.
    earlier_pid="$(cat "$judge_pid_file" 2>/dev/null || true)"
    started_judge=1
    bash "$repo_root/scripts/serve_judge.sh" --config "$PLAN_CONFIG" ${PLAN_OVERRIDES[@]+"${PLAN_OVERRIDES[@]}"} &
    serve_pid=$!
    serve_status=0
    wait "$serve_pid" || serve_status=$?
    serve_pid=""
    [ "$serve_status" -eq 0 ] || die "the judge did not come up (serve_judge.sh exit $serve_status, see above)"
    started_judge_pid="$(cat "$judge_pid_file" 2>/dev/null || true)"
    [ "$started_judge_pid" != "$earlier_pid" ] || started_judge_pid=""
    started_judge=0  # settled: started_judge_pid is ours (or empty: reused a judge that was there)
  fi
fi

# The trainer sees only the GPUs the judge does not use (train_devices above).
[ -z "$train_devices" ] || export CUDA_VISIBLE_DEVICES="$train_devices"
say "run $PLAN_RUN_NAME on GPU(s) ${CUDA_VISIBLE_DEVICES:-all}: $trainer_line"
"${PLAN_TRAINER_CMD[@]}"
