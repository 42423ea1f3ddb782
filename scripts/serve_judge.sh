#!/usr/bin/env bash
# Start the LLM judge (vllm serve) for a config's `judge:` section, wait for /health, say where it runs.
# Does nothing when a healthy judge already answers on that host:port.
#
# Usage: bash scripts/serve_judge.sh [--config NAME] [--dry-run] [--port P] [--host H] [--gpus 7] [--model M]
#                                    [--allow-no-key] [hydra overrides, e.g. judge.max_model_len=4096]
# Env (same meaning as the flags): JUDGE_PORT, JUDGE_HOST, JUDGE_GPUS, JUDGE_MODEL, JUDGE_ALLOW_NO_KEY=1;
# JUDGE_STARTUP_TIMEOUT_S (judge.startup_timeout_s, default 900); JUDGE_API_KEY (or the variable named by
# judge.api_key_env) is passed to vLLM as VLLM_API_KEY, never on the command line.
# A host other than loopback (127.0.0.1, ::1, localhost; e.g. JUDGE_HOST=0.0.0.0) needs that API key: without one
# the judge is refused, since anyone reaching the port could use it, unless --allow-no-key says so on purpose.
# The server runs in the background (its own process group); its PID is in <log>.pid (written as soon as it starts),
# its output in the log. If it does not answer /health in time, or this script is interrupted (Ctrl-C, TERM) while
# waiting, the server this invocation started is stopped again (exit 1 / 130 / 143). A judge that already answers,
# or one an earlier invocation started and is still loading, is never stopped here.
# Stop it: kill -- -"$(cat logs/judge-8000.log.pid)"
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

config="${CONFIG:-legal_grpo}"
dry_run=0
allow_no_key="${JUDGE_ALLOW_NO_KEY:-0}"
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --config=*) config="${1#*=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    --port) overrides+=("judge.port=$2"); shift 2 ;;
    --host) overrides+=("judge.host=$2"); shift 2 ;;
    --gpus) overrides+=("judge.gpus='$2'"); shift 2 ;;
    --model) overrides+=("judge.model=$2"); shift 2 ;;
    --allow-no-key) allow_no_key=1; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) overrides+=("$1"); shift ;;
  esac
done

# Python with hydra + verl (the project venv when present).
if [ -x "$repo_root/.venv/bin/python" ]; then
  export PATH="$repo_root/.venv/bin:$PATH"
fi
py="${PYTHON_BIN:-python3}"

plan="$("$py" -m recipes.commands plan --config "$config" ${overrides[@]+"${overrides[@]}"})" || {
  echo "[serve_judge] cannot read config '$config' (see the error above)" >&2; exit 2; }
eval "$plan"

if [ "$PLAN_JUDGE_MODE" != "external" ]; then
  echo "[serve_judge] judge.mode=$PLAN_JUDGE_MODE in $PLAN_CONFIG: no vllm server to start"
  exit 0
fi

api_key_env="${PLAN_JUDGE_API_KEY_ENV:-JUDGE_API_KEY}"
health() { "$py" -m recipes.commands health --api-key-env "$api_key_env" --timeout 2 "$PLAN_JUDGE_HEALTH_URL"; }

if health; then
  echo "[serve_judge] a healthy judge already answers at $PLAN_JUDGE_BASE_URL — nothing to do"
  exit 0
fi

# An open judge: reachable from other machines and no key.
if [ "$PLAN_JUDGE_LOOPBACK" -eq 0 ] && [ -z "${!api_key_env:-}" ]; then
  if [ "$allow_no_key" != "1" ]; then
    echo "[serve_judge] refusing to serve on $PLAN_JUDGE_HOST:$PLAN_JUDGE_PORT without an API key: anyone who" \
         "reaches the port could use the judge. Set $api_key_env (the reward sends it), bind to 127.0.0.1" \
         "(--host / JUDGE_HOST), or pass --allow-no-key (JUDGE_ALLOW_NO_KEY=1) on a network you trust" >&2
    exit 1
  fi
  echo "[serve_judge] WARNING: serving on $PLAN_JUDGE_HOST:$PLAN_JUDGE_PORT without an API key (--allow-no-key):" \
       "anyone who reaches the port can use the judge" >&2
fi

log="$PLAN_JUDGE_LOG"
pid_file="$log.pid"
if [ "$dry_run" -eq 1 ]; then
  echo "[serve_judge] dry run: would start the judge at $PLAN_JUDGE_ADDRESS on GPU(s) ${PLAN_JUDGE_GPUS:-<none>}," \
       "log $log:"
  echo "CUDA_VISIBLE_DEVICES=$PLAN_JUDGE_GPUS $(printf '%q ' "${PLAN_VLLM_CMD[@]}")"
  echo "[serve_judge] then wait up to ${PLAN_JUDGE_TIMEOUT_S}s for $PLAN_JUDGE_HEALTH_URL"
  exit 0
fi

# shellcheck source=scripts/process_group.sh
source "$repo_root/scripts/process_group.sh"  # stop_group PID

# The server this invocation started and has not yet handed over (healthy): stopped on any other exit.
started_pid=""
cleanup() {
  if [ -n "$started_pid" ]; then
    if kill -0 -- "-$started_pid" 2>/dev/null; then
      echo "[serve_judge] stopping the judge this script started (pid $started_pid)" >&2
    fi
    stop_group "$started_pid"
    rm -f "$pid_file"
    started_pid=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "[serve_judge] a judge we started earlier (pid $(cat "$pid_file")) is still loading; waiting for it"
else
  if [ -z "$PLAN_JUDGE_GPUS" ]; then
    echo "[serve_judge] judge.gpus is empty — set judge.gpus (e.g. --gpus 7) or point JUDGE_BASE_URL at a server" >&2
    exit 1
  fi
  if ! command -v "${PLAN_VLLM_CMD[0]}" >/dev/null 2>&1; then
    echo "[serve_judge] '${PLAN_VLLM_CMD[0]}' not found — install the GPU stack (bash scripts/train_grpo.sh installs" \
         ".[train]) or set VLLM=/path/to/vllm" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$log")" "$(dirname "$pid_file")"
  echo "[serve_judge] starting $PLAN_JUDGE_MODEL on GPU(s) $PLAN_JUDGE_GPUS at $PLAN_JUDGE_ADDRESS (log: $log)"
  # The key reaches vLLM through its environment (VLLM_API_KEY), not argv. setsid: its own process group, so a
  # Ctrl-C meant for this script does not reach it and the whole group can be stopped at once.
  api_key="${!api_key_env:-}"
  CUDA_VISIBLE_DEVICES="$PLAN_JUDGE_GPUS" VLLM_API_KEY="$api_key" \
    setsid nohup "${PLAN_VLLM_CMD[@]}" >"$log" 2>&1 < /dev/null &
  started_pid=$!
  echo "$started_pid" > "$pid_file"  # before waiting: a caller interrupted meanwhile can still find and stop it
fi

pid="$(cat "$pid_file")"
waited_from=$(date +%s)
deadline=$(( waited_from + PLAN_JUDGE_TIMEOUT_S ))
# A plain line every LEGAL_PROGRESS_INTERVAL_S seconds (30; whole seconds here) while it loads (data/progress.py).
every="${LEGAL_PROGRESS_INTERVAL_S:-30}"
every="${every%%.*}"
[[ "$every" =~ ^[0-9]+$ ]] && [ "$every" -ge 1 ] || every=1
next_line=$(( waited_from + every ))
until health; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "[serve_judge] the judge exited before answering /health — last lines of $log:" >&2
    tail -n 20 "$log" >&2 || true
    rm -f "$pid_file"
    exit 1  # (the exit trap still stops any worker of its process group left behind)
  fi
  now=$(date +%s)
  if [ "$now" -ge "$next_line" ] && [ "$now" -lt "$deadline" ]; then
    echo "[serve_judge] waiting for $PLAN_JUDGE_HEALTH_URL: $(( now - waited_from )) s of ${PLAN_JUDGE_TIMEOUT_S} s" \
         "(log: $log)"
    next_line=$(( now + every ))
  fi
  if [ "$now" -ge "$deadline" ]; then
    if [ -n "$started_pid" ]; then
      echo "[serve_judge] no /health answer after ${PLAN_JUDGE_TIMEOUT_S}s — stopping it (log $log)." \
           "Raise judge.startup_timeout_s (or JUDGE_STARTUP_TIMEOUT_S) or check the log." >&2
    else
      echo "[serve_judge] no /health answer after ${PLAN_JUDGE_TIMEOUT_S}s from the judge started earlier (pid $pid," \
           "left running; log $log). Stop it: kill -- -$pid" >&2
    fi
    exit 1
  fi
  # In the background + wait: a TERM/INT trap runs at once instead of after the sleep.
  pause=$(( deadline - now < 5 ? deadline - now : 5 ))
  sleep "$(( every < pause ? every : pause ))" & wait $!
done
started_pid=""  # healthy: it keeps running after this script exits
echo "[serve_judge] judge ready: $PLAN_JUDGE_ADDRESS (model $PLAN_JUDGE_MODEL, GPU(s) $PLAN_JUDGE_GPUS, pid $pid," \
     "log $log). Stop it: kill -- -$pid"
