"""The content-safety recipe's whole pipeline on the CPU, each stage the project's own command, for real.

    python -m recipes.rehearsal.rehearse_pipeline [--out outputs/rehearse/pipeline] [--config
    configs/rehearse_pipeline.yaml]
    (bash scripts/rehearse_pipeline.sh sets up the CPU stack and runs this)

Stages, each reading what the one before wrote (README "Stages (safety)"):
1. ``sft``: verl's SFT trainer, LoRA, on the shipped sample's SFT split (recipes/rehearsal/rehearse_sft.py); the loss
falls;
   exported with verl's model merger to ``sft/checkpoints/hf`` (+ ``lora_adapter``).
2. ``grpo``: verl's GRPO trainer from that adapter (``model.path`` + ``lora_adapter_path``,
recipes/rehearsal/rehearse_loop.py:
   N steps, a checkpoint, a resumed step). Checks: the adapter trained, the base weights did not move, and the KL
   reference is the pre-SFT model (verl computes it with the adapter disabled: the step-1 KL loss is not 0, as it
   would be against the SFT policy itself, and the base the adapter sits on is the pre-SFT model's weights).
3. ``export``: the last GRPO checkpoint to a Hugging Face directory (recipes/evaluation/export.py).
4. ``evaluate``: ``python -m recipes.evaluate --model <export> --backend hf`` on the rows the trainer validated on,
   greedy, with the trainer's response budget; recipes/evaluation/validation_match.py compares it with the trainer's
   last
   validation (prompts, greedy responses, reward values, the logged per-task numbers). The base model, the SFT
   export and the round-2 export are evaluated the same way for the comparison.
5. ``rejection``: ``python -m recipes.safety.rejection_sample --model <export> --backend hf`` (sft.parquet for the
   next round: the stage-0 SFT rows, then the kept answers).
6. ``sft_round2``: one more SFT round on that sft.parquet, continuing the GRPO adapter; exported.
7. ``compare``: ``python -m recipes.evaluate compare`` over the stages' reports: compare.md (table) and
   compare_safety.png (plot).

Writes OUT/summary.json whole at the end: ``{"ok", "seconds", "stages": {"sft": {"loss_first", "loss_last", …},
"grpo": {"steps", …}, "export": {"hf_dir", …}, "evaluate": {"metrics": <metrics.json>, …}, "rejection":
{"kept_share", …}, "sft_round2": {…}, "compare": {…}}}``; a stage that could not run for want of an earlier one is
``{"ok": false, "skipped": "<why>"}``. One line per stage as it starts and ends. Exit 0 only when every stage ran and
its checks held.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from recipes.launch.commands import REPO_ROOT, compose_config

__all__ = ["STAGES", "evaluate_against_trainer", "main", "run_pipeline", "trainer_sampling"]

DEFAULT_OUT = REPO_ROOT / "outputs" / "rehearse" / "pipeline"
DEFAULT_CONFIG = REPO_ROOT / "configs" / "rehearse_pipeline.yaml"
STAGES = ("sft", "grpo", "export", "evaluate", "rejection", "sft_round2", "compare")
Emit = Callable[[str], None]


class StageFailed(RuntimeError):
    """A stage ran and its command or check failed (the message says which and where its log is)."""


def _run_logged(cmd: Sequence[str], log: Path, timeout_s: float = 1800.0) -> None:
    """Run a project command (repo root, this interpreter); its output to log; StageFailed naming the log."""
    from recipes.rehearsal.cluster import _env

    with log.open("w", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(cmd) + "\n")
        handle.flush()
        proc = subprocess.run(
            list(cmd), cwd=REPO_ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT, timeout=timeout_s
        )
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise StageFailed(f"exit {proc.returncode} of {' '.join(cmd[:4])} …: {' | '.join(tail)[-400:]} (log {log})")


# ------------------------------------------------------------------------------------------------ stage helpers
def first_rows(src: Path, dst: Path, rows: int) -> Path:
    """The first rows of a parquet file, same schema (the validation rows, the rejection round's texts)."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(src))
    pq.write_table(table.slice(0, min(rows, table.num_rows)), str(dst))
    return dst


def tensors(path: Path) -> dict[str, Any]:
    """Every tensor of a safetensors file."""
    from safetensors.torch import load_file

    return load_file(str(path))


def max_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> float:
    """The largest absolute difference between two state dicts with the same names (inf when the names differ)."""
    if set(before) != set(after):
        return float("inf")
    return max((float((after[k].float() - before[k].float()).abs().max()) for k in before), default=0.0)


def grpo_checks(sft_hf: Path, grpo_hf: Path, base_model: Path, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The adapter trained, the base stayed, and the reference is the pre-SFT model (module docstring)."""
    adapter = "lora_adapter/adapter_model.safetensors"
    adapter_change = max_change(tensors(sft_hf / adapter), tensors(grpo_hf / adapter))
    base_change = max_change(tensors(sft_hf / "model.safetensors"), tensors(grpo_hf / "model.safetensors"))
    import torch

    pre_sft = {k: v.to(torch.bfloat16) for k, v in tensors(base_model / "model.safetensors").items()}
    sft_base = tensors(sft_hf / "model.safetensors")
    base_is_pre_sft = max_change({k: pre_sft[k] for k in sft_base if k in pre_sft}, sft_base) == 0.0
    step1 = next((r["data"] for r in records if r.get("step") == 1 and "timing_s/step" in r.get("data", {})), {})
    kl1 = step1.get("actor/kl_loss")
    return {
        "adapter_max_change": adapter_change,
        "base_max_change": base_change,
        "lora_trained": 0.0 < adapter_change < float("inf"),
        "base_frozen": base_change == 0.0,
        "reference": {
            "kl_loss_step1": kl1,
            "ref_is_not_the_sft_policy": isinstance(kl1, int | float) and kl1 > 0.0,
            "adapter_free_base_is_the_pre_sft_model": base_is_pre_sft,
        },
    }


def load_check(hf: Path) -> dict[str, Any]:
    """transformers loads an export (with its LoRA adapter, as evaluation applies it) and scores one token."""
    import torch

    from recipes.evaluation.generation import resolve_adapter
    from recipes.evaluation.hf_generate import load_causal_lm

    adapter = resolve_adapter(str(hf), None)
    model = load_causal_lm(str(hf), adapter)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[0]])).logits
    if not bool(torch.isfinite(logits).all()):
        raise StageFailed(f"{hf}: transformers loads it, but its logits are not finite")
    return {"dir": str(hf), "lora_adapter": adapter, "vocab": int(logits.shape[-1])}


def write_sampling(base: Path, out: Path, max_tokens: int, max_model_len: int, n: int | None = None) -> Path:
    """A sampling YAML (configs/eval_sampling_safety.yaml or safety_rejection.yaml) with the CPU run's budget."""
    cfg = yaml.safe_load(base.read_text(encoding="utf-8"))
    cfg["sampling"]["max_tokens"] = int(max_tokens)
    if n is not None:
        cfg["sampling"]["n"] = int(n)
    cfg["llm"]["max_model_len"] = int(max_model_len)
    out.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def trainer_sampling(trainer_cfg: Any, data: Path, out: Path) -> Path:
    """The recipe's evaluation sampling YAML with the trainer's validation budget: greedy (the YAML's), max_tokens =
    data.max_response_length, max_model_len = prompt + response budget."""
    from recipes.evaluation.evaluate import evaluation_of, recipe_of_data

    base = Path(evaluation_of(recipe_of_data(data)).DEFAULT_SAMPLING_CONFIG)
    d = trainer_cfg.data
    response, prompt = int(d.max_response_length), int(d.max_prompt_length)
    return write_sampling(base, out, response, prompt + response)


def run_evaluate(model: Path, data: Path, config: str, report: Path, sampling: Path, backend: str, logs: Path,
                 extra: Sequence[str] = ()) -> Path:  # fmt: skip
    """`python -m recipes.evaluate --model MODEL` on data into report; its metrics.json."""
    _run_logged([sys.executable, "-m", "recipes.evaluate", "--data", str(data), "--model", str(model), "--backend",
                 backend, "--sampling-config", str(sampling), "--config", config, "--out", str(report), "--name",
                 report.name, *extra], logs / f"evaluate-{report.name}.log")  # fmt: skip
    return report / "metrics.json"


def evaluate_against_trainer(
    hf: Path,
    trainer_out: Path,
    data: Path,
    config: str,
    report: Path,
    sampling: Path,
    backend: str = "hf",
    max_changed_share: float = 0.0,
    logs: Path | None = None,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate an export on the rows its trainer validated on, then recipes/evaluation/validation_match.py against the
    trainer's
    last validation; the evaluate block of the summary (reproduces_trainer, per-task numbers, problems)."""
    logs = logs or report.parent
    logs.mkdir(parents=True, exist_ok=True)
    metrics = run_evaluate(hf, data, config, report, sampling, backend, logs, extra)
    match_path = report / "validation_match.json"
    cmd = [sys.executable, "-m", "recipes.validation_match", "--trainer-out", str(trainer_out), "--report",
           str(report), "--data", str(data), "--model", str(hf), "--config", config, "--max-changed-share",
           str(max_changed_share), "--out", str(match_path)]  # fmt: skip
    try:
        _run_logged(cmd, logs / f"validation_match-{report.name}.log")
    except StageFailed:
        pass  # the verdict and its problems are in match_path (a missing file is a failure below)
    match = json.loads(match_path.read_text(encoding="utf-8")) if match_path.is_file() else {}
    return {
        "metrics": str(metrics),
        "backend": backend,
        "data": str(data),
        "validation_match": str(match_path),
        "reproduces_trainer": bool(match.get("ok")),
        "step": match.get("step"),
        "identical_responses": f"{match.get('identical')}/{match.get('rows')}",
        "tasks": match.get("tasks"),
        "tolerance": match.get("tolerance"),
        "problems": match.get("problems", [f"validation_match wrote no verdict (log in {logs})"]),
    }


class Pipeline:
    """Runs the stages in order; each fills its block of the summary or raises StageFailed."""

    def __init__(self, settings: Mapping[str, Any], out: Path, model: Path, emit: Emit) -> None:
        self.s, self.out, self.model, self.emit = settings, out, model, emit
        self.data = out / "data"
        self.stages: dict[str, dict[str, Any]] = {}
        self.reports: dict[str, Path] = {}
        self.grpo_cfg: Any = None

    # ---- 1
    def sft(self) -> dict[str, Any]:
        from recipes.rehearsal.rehearse_sft import rehearse_sft

        cfg = self.s["sft"]
        result = rehearse_sft(cfg["config"], self.model, self.data, self.out / "sft", int(cfg["steps"]),
                              emit=self._inner)  # fmt: skip
        self.stages["sft"] = result.summary()
        if not result.passed:
            raise StageFailed("; ".join(result.problems))
        self.sft_result = result
        block = self.stages["sft"]
        return block

    # ---- 2
    def grpo(self) -> dict[str, Any]:
        from recipes.evaluation.export import export
        from recipes.rehearsal.rehearse_loop import CannotRehearse, judge_plan, rehearse_loop
        from recipes.trainer.cpu.overrides import cpu_changes, hydra_overrides

        cfg = self.s["grpo"]
        name = str(cfg["config"])
        val = first_rows(self.data / "test.parquet", self.data / "val.parquet", int(cfg["val_rows"]))
        out = self.out / "grpo"
        overrides = [
            *self.sft_result.grpo_overrides,
            f"actor_rollout_ref.actor.optim.lr={cfg['lr']}",
            f"data.val_files={val}",
            "data.val_max_samples=-1",
            f"trainer.validation_data_dir={out / 'validation'}",
        ]
        judge = "as configured"
        try:
            judge_plan(compose_config(name, overrides), dict(os.environ))
        except CannotRehearse as exc:
            overrides.append("reward.custom_reward_function.reward_kwargs.reasoning_scorer=ngram")
            judge = f"ngram reasoning scorer instead of the judge ({exc})"
            self.emit(f"[pipeline] grpo: no judge here: reward_kwargs.reasoning_scorer=ngram ({exc})")
        base = compose_config(name, overrides)
        self.grpo_cfg = compose_config(name, [*hydra_overrides(base, cpu_changes(base, self.model, self.data, out, 1)),
                                              *overrides])  # fmt: skip
        result = rehearse_loop(name, self.model, self.data, out, int(cfg["steps"]), overrides, emit=self._inner)
        block: dict[str, Any] = {
            "config": name,
            "steps": len([r for r in result.records() if "timing_s/step" in r.get("data", {})]),
            "resumed": len(result.phases) == 2,
            "judge": judge,
            "checkpoint_dir": str(out / "checkpoints"),
            "metrics": str(result.metrics_path),
            "seconds": round(sum(p.seconds for p in result.phases), 1),
            "problems": list(result.problems),
        }
        self.stages["grpo"] = block
        if not result.passed:
            raise StageFailed("; ".join(result.problems))
        # The checks read the exported start (the SFT export) and the exported end of the run.
        self.exported = export(out / "checkpoints", out / "hf")
        self.grpo_hf = Path(self.exported.hf_dir)
        block.update(grpo_checks(Path(self.sft_result.hf_dir or ""), self.grpo_hf, self.model, result.records()))
        reference = block["reference"]
        if not (block["lora_trained"] and block["base_frozen"] and reference["ref_is_not_the_sft_policy"]
                and reference["adapter_free_base_is_the_pre_sft_model"]):  # fmt: skip
            raise StageFailed(
                f"GRPO trained more or less than the adapter, or against another reference: adapter change "
                f"{block['adapter_max_change']}, base change {block['base_max_change']}, {block['reference']}"
            )
        return block

    # ---- 3
    def export(self) -> dict[str, Any]:
        """The GRPO export (written by the grpo stage with recipes/evaluation/export.py) loads in transformers with its
        adapter
        and computes; so does the SFT export."""
        loads = {}
        for name, hf in (("grpo", self.grpo_hf), ("sft", Path(self.sft_result.hf_dir or ""))):
            loads[name] = load_check(hf)
        exported = self.exported
        return {
            "hf_dir": exported.hf_dir,
            "lora_adapter": exported.adapter,
            "checkpoint": exported.checkpoint,
            "global_step": exported.global_step,
            "command": f"python -m recipes.export {self.out / 'grpo' / 'checkpoints'} --out {exported.hf_dir}",
            "sft_hf_dir": self.sft_result.hf_dir,
            "transformers_loads": loads,
        }

    # ---- 4
    def evaluate(self) -> dict[str, Any]:
        cfg = self.s["evaluate"]
        report = self.out / "reports" / "grpo"
        self.sampling = trainer_sampling(self.grpo_cfg, self.data / "val.parquet", self.out / "eval_sampling.yaml")
        block = evaluate_against_trainer(
            self.grpo_hf, self.out / "grpo", self.data / "val.parquet", str(self.s["grpo"]["config"]), report,
            self.sampling, cfg["backend"], float(cfg["max_changed_share"]), self.out / "logs",
        )  # fmt: skip
        self.reports["grpo"] = report
        for name, model in (("base", self.model), ("sft", Path(self.sft_result.hf_dir or ""))):
            self._evaluate(model, self.out / "reports" / name, cfg["backend"])
        block["reports"] = {k: str(v) for k, v in self.reports.items()}
        if not block["reproduces_trainer"]:
            self.stages["evaluate"] = block
            raise StageFailed(f"the evaluation does not reproduce the trainer's validation: {block['problems']}")
        return block

    def _evaluate(self, model: Path, report: Path, backend: str) -> None:
        """recipes.evaluate --model on the validation rows into report (the stages' comparison)."""
        run_evaluate(model, self.data / "val.parquet", str(self.s["grpo"]["config"]), report, self.sampling, backend,
                     self.out / "logs")  # fmt: skip
        self.reports[report.name] = report

    # ---- 5
    def rejection(self) -> dict[str, Any]:
        cfg = self.s["rejection"]
        data = self.grpo_cfg.data
        config = write_sampling(
            REPO_ROOT / "configs" / "safety_rejection.yaml",
            self.out / "rejection.yaml",
            int(cfg["max_tokens"]),
            int(data.max_prompt_length) + int(cfg["max_tokens"]),
            n=int(cfg["n"]),
        )
        texts = first_rows(self.data / "train.parquet", self.out / "data" / "rejection_texts.parquet", int(cfg["rows"]))
        out = self.out / "rounds" / "r1"
        _run_logged([sys.executable, "-m", "recipes.safety.rejection_sample", "--model", str(self.grpo_hf), "--backend",
                     "hf", "--data", str(texts), "--out", str(out), "--config", str(config), "--base-sft",
                     str(self.data / "sft.parquet")], self.out / "logs" / "rejection.log")  # fmt: skip
        summary = json.loads((out / "round.json").read_text(encoding="utf-8"))
        self.round_dir = out
        return {
            "kept_share": summary.get("kept_share"),
            "kept": summary.get("kept"),
            "answers": len((out / "scores.jsonl").read_text(encoding="utf-8").splitlines()),
            "round": str(out / "round.json"),
            "distribution_line": summary.get("distribution_line"),
            "sft_rows": summary["outputs"]["sft"]["rows"],
            "sft": summary["outputs"]["sft"]["path"],
            "grpo_rows": summary["outputs"]["grpo"]["rows"],
        }

    # ---- 6
    def sft_round2(self) -> dict[str, Any]:
        from recipes.rehearsal.rehearse_sft import rehearse_sft

        cfg = self.s["sft_round2"]
        hf = self.grpo_hf
        overrides = [f"model.path={hf}", f"model.lora_adapter_path={hf / 'lora_adapter'}"]
        result = rehearse_sft(self.s["sft"]["config"], self.model, self.round_dir, self.out / "sft_round2",
                              int(cfg["steps"]), overrides, emit=self._inner)  # fmt: skip
        block = {**result.summary(), "data": str(self.round_dir / "sft.parquet"), "start": str(hf)}
        if not result.passed:
            self.stages["sft_round2"] = {**block, "ok": False}
            raise StageFailed("; ".join(result.problems))
        self._evaluate(Path(result.hf_dir or ""), self.out / "reports" / "sft_round2", self.s["evaluate"]["backend"])
        return block

    # ---- 7
    def compare(self) -> dict[str, Any]:
        out = self.out / "compare"
        order = [name for name in ("base", "sft", "grpo", "sft_round2") if name in self.reports]
        _run_logged([sys.executable, "-m", "recipes.evaluate", "compare", *(str(self.reports[n]) for n in order),
                     "--out", str(out)], self.out / "logs" / "compare.log")  # fmt: skip
        plots = sorted(str(p) for p in out.glob("*.png"))
        if not (out / "compare.md").is_file() or not plots:
            raise StageFailed(f"compare wrote no compare.md or plot in {out}")
        return {"stages": order, "table": str(out / "compare.md"), "json": str(out / "compare.json"), "plots": plots}

    def _inner(self, line: str) -> None:
        self.emit("    " + line)


def run_pipeline(settings: Mapping[str, Any], out: Path, model: Path, emit: Emit = print) -> dict[str, Any]:
    """Every stage in order (module docstring); the summary (also written to out/summary.json)."""
    start = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True)
    pipe = Pipeline(settings, out, model, emit)
    failed: str | None = None
    for i, name in enumerate(STAGES, 1):
        if failed is not None:
            pipe.stages.setdefault(name, {"ok": False, "skipped": f"stage {failed} failed"})
            emit(f"[pipeline] {i}/{len(STAGES)} {name}: skipped (stage {failed} failed)")
            continue
        emit(f"[pipeline] {i}/{len(STAGES)} {name}: running")
        began = time.monotonic()
        try:
            block = getattr(pipe, name)()
        except Exception as exc:  # a stage's failure is reported and stops the stages after it, never silently
            pipe.stages.setdefault(name, {"ok": False})
            pipe.stages[name].update(ok=False, error=f"{type(exc).__name__}: {exc}"[:2000])
            failed = name
            emit(f"[pipeline] {i}/{len(STAGES)} {name}: FAILED after {time.monotonic() - began:.0f} s: {exc}")
            continue
        seconds = time.monotonic() - began
        pipe.stages[name] = {**pipe.stages.get(name, {}), **block, "ok": True, "seconds": round(seconds, 1)}
        emit(f"[pipeline] {i}/{len(STAGES)} {name}: done in {seconds:.0f} s{_headline(name, pipe.stages[name])}")
    summary = {
        "ok": failed is None and all(pipe.stages[n].get("ok") for n in STAGES),
        "seconds": round(time.monotonic() - start, 1),
        "out": str(out),
        "stages": {n: pipe.stages[n] for n in STAGES},
    }
    partial = out / "summary.json.partial"
    partial.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    partial.replace(out / "summary.json")
    return summary


def _headline(name: str, block: Mapping[str, Any]) -> str:
    """The few numbers a stage's end line shows."""
    if name in ("sft", "sft_round2") and block.get("loss_first") is not None:
        return f": loss {block['loss_first']:.4f} -> {block['loss_last']:.4f}"
    if name == "grpo":
        return f": {block.get('steps')} steps, kl_loss step 1 {block.get('reference', {}).get('kl_loss_step1')}"
    if name == "export":
        return f": {block.get('hf_dir')}"
    if name == "evaluate":
        return f": reproduces the trainer's validation, {block.get('identical_responses')} responses identical"
    if name == "rejection":
        return f": kept share {block.get('kept_share')}, {block.get('sft_rows')} rows for the next SFT round"
    if name == "compare":
        return f": {block.get('table')}"
    return ""


def load_settings(path: str | Path) -> dict[str, Any]:
    """configs/rehearse_pipeline.yaml; a missing section or key is an error naming it."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    needed = {
        "sft": ("config", "steps"),
        "grpo": ("config", "steps", "lr", "val_rows"),
        "evaluate": ("backend", "max_changed_share"),
        "rejection": ("rows", "n", "max_tokens"),
        "sft_round2": ("steps",),
    }
    for section, keys in needed.items():
        block = data.get(section)
        if not isinstance(block, dict):
            raise SystemExit(f"{path}: section {section!r} must be a mapping")
        missing = [k for k in keys if k not in block]
        if missing:
            raise SystemExit(f"{path}: {section}: missing {', '.join(missing)}")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run every stage, print where the summary is; 0 only when every stage ran and held."""
    parser = argparse.ArgumentParser(
        prog="python -m recipes.rehearsal.rehearse_pipeline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: %(default)s)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="stage settings (default: %(default)s)")
    parser.add_argument("--model", default=None, help="tiny model directory (default: built into OUT/tiny_qwen)")
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    out = Path(args.out)

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    model = Path(args.model) if args.model else _tiny_model(out.parent / "tiny_qwen")
    summary = run_pipeline(settings, out, model, emit)
    verdict = "passed" if summary["ok"] else "FAILED"
    failed = [n for n in STAGES if not summary["stages"][n].get("ok")]
    emit(f"pipeline {verdict} in {summary['seconds']:.0f} s{'' if summary['ok'] else ': ' + ', '.join(failed)}; "
         f"summary: {out / 'summary.json'}")  # fmt: skip
    return 0 if summary["ok"] else 1


def _tiny_model(path: Path) -> Path:
    """The tiny random Qwen2 (tests/helpers/tiny_model.py), built once into path."""
    subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "helpers" / "tiny_model.py"), str(path)], check=True,
                   capture_output=True)  # fmt: skip
    return path


if __name__ == "__main__":
    sys.exit(main())
