"""`python -m data.prepare`: CAIL2018, raw judgments or safety records → verl parquet (train/test) + stats.json.

Two streaming passes keep memory bounded by the number of cases, not their text: pass 1 validates every record and
keeps only (64-bit hash of the normalized fact, file, line, byte offset) of the usable ones (26 bytes each); repeated
facts are dropped by hash (skip reason duplicate_fact) and the unique cases are split and sampled with the seed (test
first, then train; a case is in one split only); pass 2 reads the chosen lines again (by offset in an uncompressed
file, reading a compressed one through up to the last chosen line) and writes their rows in batches. An input whose
size or modification time changes between the passes stops the run. Every input line is either kept or skipped with
a reason: read = kept + skipped. Lines over --max-record-bytes are skipped (record_too_large) without being held
whole; with --tokenizer, cases whose longest task prompt is over --max-prompt-tokens are skipped in pass 1
(prompt_too_long) and the token distribution goes to stats.json. A corrupt or truncated input file stops the run
with an error naming it.

Rows (data.rows.ROW_SCHEMA, one per (case, task), in input order): data_source "legal/<task>", prompt (chat messages,
data.domains.legal.tasks.build_prompt), ability "legal", reward_model {style "rule", ground_truth}, extra_info
{index, task, charges, articles, term_kind, term_months, fine, verdict, split, case_id}. ground_truth per task: charge
"盗窃罪、诈骗罪"; article "第67条、第264条" (Arabic numerals, ascending); term format_term (有期徒刑一年六个月 /
拘役五个月 / 无期徒刑 / 死刑 / 免予刑事处罚, and 单处罚金 for a fine-only sentence); verdict: CAIL2018 →
build_verdict sentence, judgments → the text after 判决如下 up to the appeal notice, execution-date notes （刑期从…止）
removed. The safety source brings its own rows and schema (data/sources/safety.py; one row per text).

--sft-fraction F (sources with an SFT response: safety) takes round(F x unique cases) more cases after the test split
and before train, and writes them to sft.parquet (data/sft.py: the GRPO prompt + the gold response) instead of a
GRPO split; stats.json counts them under "sft" like the other splits.

Whole or nothing (data/output.py): every file is written into a fresh directory beside --output, which takes the
output's place in one rename when the run succeeds; a failed, interrupted or killed run leaves the old output as it
was, and a re-run never mixes files of two runs (a run without --sft-fraction leaves no sft.parquet). An output
directory holding files data.prepare does not write is refused unless --overwrite. A write error (a full disk) is one
line naming the file.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from data.domains.legal.label_sets import LABEL_SETS_FILE, LabelSetRecorder
from data.output import OutputError, StagedDir, check_output
from data.progress import tqdm
from data.reader import MAX_RECORD_BYTES, TOO_LARGE, InputError, decode_record, iter_lines, lines_at
from data.sft import SftParquetWriter, SftRow
from data.sources import SOURCES, SkipRecord, get_parser, get_source
from data.split import PLAN_SPLITS, SFT_SPLIT, SPLITS, SplitPlan, fact_key, plan_split
from data.stats import PrepareStats
from data.tokens import PromptCounter, default_max_prompt_tokens, token_distribution

__all__ = ["BadRecordError", "NoUsableDataError", "OutputError", "PrepareConfig", "RecordError", "main", "prepare"]

logger = logging.getLogger(__name__)

WRITE_BATCH = 4096
TOKEN_BATCH = 256  # records per tokenizer call with --tokenizer
OUTPUT_FILES = frozenset({*(f"{s}.parquet" for s in (*SPLITS, SFT_SPLIT)), "stats.json", LABEL_SETS_FILE})
"""What data.prepare writes into --output: a directory holding only these is replaced without --overwrite."""


class BadRecordError(ValueError):
    """--strict: the first unusable record, naming file, line, reason and detail."""

    def __init__(self, path: str, line: int, reason: str, detail: str) -> None:
        super().__init__(f"{path}:{line}: {reason}: {detail} (run without --strict to skip and count such records)")
        self.path, self.line, self.reason, self.detail = path, line, reason, detail


class NoUsableDataError(RuntimeError):
    """No record of the inputs could be used."""


class RecordError(RuntimeError):
    """Pass 2 could not write a record that pass 1 accepted; the message names file and line."""


@dataclass(frozen=True)
class PrepareConfig:
    """Everything one run depends on (recorded in stats.json)."""

    source: str
    inputs: tuple[str, ...]
    output: str
    tasks: tuple[str, ...] | None = None  # None: every task of the source
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0
    template: str | None = None  # None: the source's default template
    strict: bool = False
    test_fraction: float = 0.2
    max_record_bytes: int = MAX_RECORD_BYTES
    tokenizer: str | None = None
    max_prompt_tokens: int | None = None
    sft_fraction: float = 0.0
    overwrite: bool = False  # replace an --output that holds files data.prepare does not write (not recorded)

    def __post_init__(self) -> None:
        """Reject bad values with a message saying which option is wrong."""
        if self.source not in SOURCES:
            raise ValueError(f"--source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        source = get_source(self.source)
        if self.template is None:
            object.__setattr__(self, "template", source.default_template)
        if self.template not in source.templates:
            raise ValueError(f"--template must be one of {', '.join(source.templates)}, got {self.template!r}")
        if not self.inputs:
            raise ValueError("--input needs at least one path")
        tasks = source.tasks if self.tasks is None else tuple(self.tasks)
        if not tasks or any(t not in source.tasks for t in tasks):
            raise ValueError(f"--tasks must be a non-empty subset of {', '.join(source.tasks)}, got {tasks!r}")
        object.__setattr__(self, "tasks", tuple(t for t in source.tasks if t in tasks))  # canonical order
        if self.tokenizer is not None and not source.counts_prompt_tokens:
            raise ValueError(f"--tokenizer counts the legal prompts; --source {self.source} does not support it yet")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:
            raise ValueError(f"--max-prompt-tokens must be >= 1, got {self.max_prompt_tokens}")
        if self.max_prompt_tokens is not None and self.tokenizer is None:
            raise ValueError("--max-prompt-tokens needs --tokenizer (the policy's tokenizer counts the tokens)")
        if self.max_record_bytes < 1:
            raise ValueError(f"--max-record-bytes must be >= 1, got {self.max_record_bytes}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")
        if not 0.0 <= self.sft_fraction < 1.0:
            raise ValueError(f"--sft-fraction must be in [0, 1), got {self.sft_fraction}")
        if self.sft_fraction and source.sft_response is None:
            raise ValueError(
                f"--sft-fraction: source {self.source} has no SFT response (GRPO only); use --source safety"
            )


def _scan(
    config: PrepareConfig,
    stats: PrepareStats,
    counter: PromptCounter | None = None,
    budget: int | None = None,
    labels: LabelSetRecorder | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pass 1: validate every record; (fact hashes, file indices, line numbers, line offsets) of the usable ones, in
    input order.

    With a counter, prompts longer than budget tokens are skipped as prompt_too_long (counted in batches of
    TOKEN_BATCH records) and the token counts of all valid records go to stats.prompt_tokens.
    """
    parse, scan_line = get_parser(config.source), get_source(config.source).parse_scan_line
    keys, files, lines, starts = array("q"), array("H"), array("Q"), array("Q")
    tokens = array("I")
    pending: list[tuple[int, int, int, int, str]] = []  # (key, file, line, offset, fact) waiting for token counts
    names = [Path(p).name for p in config.inputs]

    def count_pending() -> None:
        """Token counts of the pending records; keep those within the budget."""
        for (key, file_idx, line_no, start, _), n in zip(
            pending, counter.longest([p[4] for p in pending]), strict=True
        ):
            tokens.append(n)
            if budget is not None and n > budget:
                stats.skip("prompt_too_long", config.inputs[file_idx], line_no, f"{n} prompt tokens > {budget}")
                continue
            keys.append(key)
            files.append(file_idx)
            lines.append(line_no)
            starts.append(start)
        pending.clear()

    for file_idx, line_no, start, raw in iter_lines(
        config.inputs, desc=f"scan {config.source}", max_bytes=config.max_record_bytes
    ):
        stats.read += 1
        try:  # pass 1 uses no case id: the typed path gets none (one string fewer per line)
            case = scan_line(raw, "") if scan_line is not None and raw is not TOO_LARGE else None
            if case is None:
                case = parse(decode_record(raw), f"{names[file_idx]}:{line_no}", scan=True)
        except SkipRecord as exc:
            path = config.inputs[file_idx]
            if config.strict:
                raise BadRecordError(path, line_no, exc.reason, exc.detail) from exc
            logger.debug("skip %s:%d: %s", path, line_no, exc)
            stats.skip(exc.reason, path, line_no, exc.detail)
            continue
        if labels is not None:  # the contest's label lists, for evaluate's cail_score_official
            labels.add(case.charges, case.articles)
        if counter is not None:
            pending.append((fact_key(case.fact), file_idx, line_no, start, case.fact))
            if len(pending) >= TOKEN_BATCH:
                count_pending()
            continue
        keys.append(fact_key(case.fact))
        files.append(file_idx)
        lines.append(line_no)
        starts.append(start)
    if counter is not None:
        count_pending()
        stats.prompt_tokens = {
            "tokenizer": config.tokenizer,
            "chat_template": counter.chat_template,
            "max_prompt_tokens": budget,
            "counted": len(tokens),
            "over_budget": int(np.count_nonzero(np.frombuffer(tokens, dtype=np.uint32) > budget)) if budget else 0,
            **token_distribution(np.frombuffer(tokens, dtype=np.uint32) if tokens else np.zeros(0, np.uint32)),
        }
    return (
        np.frombuffer(keys, dtype=np.int64) if keys else np.zeros(0, np.int64),
        np.frombuffer(files, dtype=np.uint16) if files else np.zeros(0, np.uint16),
        np.frombuffer(lines, dtype=np.uint64) if lines else np.zeros(0, np.uint64),
        np.frombuffer(starts, dtype=np.uint64) if starts else np.zeros(0, np.uint64),
    )


def _dedup(
    config: PrepareConfig, stats: PrepareStats, keys: np.ndarray, files: np.ndarray, lines: np.ndarray
) -> np.ndarray:
    """Positions (into the scan arrays) of the first record of each distinct fact; repeats counted as skipped."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    is_first = np.zeros(len(keys), dtype=bool)
    is_first[first] = True
    for i in np.flatnonzero(~is_first):
        j = first[inverse[i]]
        stats.skip(
            "duplicate_fact",
            config.inputs[files[i]],
            int(lines[i]),
            f"same fact as {Path(config.inputs[files[j]]).name}:{int(lines[j])}",
        )
    return np.flatnonzero(is_first)


def _chosen_lines(
    config: PrepareConfig, files: array, lines: array, starts: array
) -> Iterator[tuple[int, int, bytes | memoryview]]:
    """(file index, line number, raw line) of each chosen case (at files[i]:lines[i], byte offset starts[i]), in
    input order: lines_at reads an uncompressed file's lines by offset, a compressed file is read through."""
    pos, n = 0, len(files)
    plain = [p for p in config.inputs if not p.endswith(".gz")]
    total = sum(os.path.getsize(p) for p in plain) if len(plain) == len(config.inputs) else None
    with tqdm(total=total, desc="write rows", unit="B", unit_scale=True, mininterval=1.0, leave=False) as bar:
        while pos < n:
            file_idx = files[pos]
            end = bisect_right(files, file_idx, pos)  # files are in input order: this file's cases are pos..end-1
            path = config.inputs[file_idx]
            if not path.endswith(".gz"):
                yield from zip(
                    repeat(file_idx),
                    lines[pos:end],
                    lines_at(path, starts[pos:end], config.max_record_bytes, bar.update),
                )
            else:
                want = pos
                for _, line_no, _, raw in iter_lines(
                    [path],
                    desc=f"read {Path(path).name}",
                    stop_after=(0, lines[end - 1]),
                    max_bytes=config.max_record_bytes,
                ):
                    if line_no == lines[want]:
                        yield file_idx, line_no, raw
                        want += 1
                        if want == end:
                            break
                if want != end:
                    raise RecordError(
                        f"{path} ended before all chosen records were read again ({want - pos}/{end - pos})"
                    )
            pos = end


def _write(
    config: PrepareConfig,
    stats: PrepareStats,
    plan: SplitPlan,
    cases: np.ndarray,
    files: np.ndarray,
    lines: np.ndarray,
    starts: np.ndarray,
    stage: StagedDir,
) -> dict[str, int]:
    """Pass 2: re-read the chosen lines (cases[i] at files[i]:lines[i], byte offset starts[i], input order) and write
    their rows into the staging directory."""
    source = get_source(config.source)
    parse, parse_rows_line = source.parse_record, source.parse_rows_line
    names = [Path(p).name for p in config.inputs]
    writers: dict[str, pq.ParquetWriter] = {}
    for s in SPLITS:
        with stage.writing(f"{s}.parquet") as path:
            writers[s] = pq.ParquetWriter(str(path), source.row_schema)
    batches = {s: source.row_batch(config.template) for s in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    sft = None
    if config.sft_fraction:
        with stage.writing(f"{SFT_SPLIT}.parquet") as path:
            sft = SftParquetWriter(path)
    counts[SFT_SPLIT] = 0

    def flush(split: str) -> None:
        """Write the collected rows of one split."""
        if batches[split].rows:
            with stage.writing(f"{split}.parquet"):
                writers[split].write_table(batches[split].table())
            batches[split].clear()

    # plain int arrays: indexing them is cheaper than numpy scalars, at the same 8 bytes per case
    case_files, case_lines, case_starts = _ints(files), _ints(lines), _ints(starts)
    codes, ranks = _ints(plan.split[cases]), _ints(plan.rank[cases])
    every = {code: min(q, default=0) for code, q in enumerate(plan.quotas.get(s, ()) for s in PLAN_SPLITS)}
    all_tasks = list(config.tasks)
    try:
        pos, n = 0, len(cases)
        for file_idx, line_no, raw in _chosen_lines(config, case_files, case_lines, case_starts):
            code, rank = codes[pos], ranks[pos]
            pos += 1
            if code < 0:
                continue
            if rank < every[code]:  # the common case: every task (rank below every task's quota)
                split, tasks = PLAN_SPLITS[code], all_tasks
            else:
                chosen = plan.tasks_for(int(cases[pos - 1]), config.tasks)
                assert chosen is not None  # code >= 0
                split, tasks = chosen
            path = config.inputs[file_idx]
            try:
                origin = f"{names[file_idx]}:{line_no}"
                # the line is unchanged since pass 1 (checked by _check_unchanged); SFT rows need the fact's text
                fast = parse_rows_line(raw, origin) if parse_rows_line is not None and split != SFT_SPLIT else None
                case, fact = fast if fast is not None else (parse(decode_record(raw), origin), None)
                if split == SFT_SPLIT:
                    with stage.writing(f"{SFT_SPLIT}.parquet"):  # the SFT writer writes a batch every so often
                        _add_sft(sft, source, case, tasks, config.template, counts[split])
                elif fact is None:
                    batches[split].add(case, tasks, split, counts[split])
                else:  # only sources with parse_rows_line (RowBatch) get the fact's bytes
                    batches[split].add(case, tasks, split, counts[split], fact)
            except SkipRecord as exc:  # the file changed between the passes
                raise RecordError(f"{path}:{line_no} was valid in pass 1 but not in pass 2 ({exc})") from exc
            except OutputError:
                raise
            except Exception as exc:  # a gap in pass-1 validation: name the record instead of a bare traceback
                raise RecordError(
                    f"{path}:{line_no}: cannot build rows ({type(exc).__name__}: {exc}); "
                    "please report it with this record"
                ) from exc
            counts[split] += len(tasks)
            source.count_case(stats, case, split, tasks)
            if split in batches and batches[split].rows >= WRITE_BATCH:  # the SFT writer batches itself
                flush(split)
        if pos != n:
            raise RecordError(f"inputs ended before all chosen records were read again ({pos}/{n})")
        for split in SPLITS:
            flush(split)
            with stage.writing(f"{split}.parquet"):
                writers[split].close()
        if sft is not None:
            with stage.writing(f"{SFT_SPLIT}.parquet"):
                sft.close()
    except BaseException:
        for writer in writers.values():  # their files go with the staging directory (StagedDir)
            with contextlib.suppress(Exception):
                writer.close()
        if sft is not None:
            with contextlib.suppress(Exception):
                sft.abort()
        raise
    return counts


def _signature(path: str) -> tuple[int, int]:
    """(size, modification time in ns) of an input file."""
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _check_unchanged(paths: Sequence[str], signatures: Sequence[tuple[int, int]]) -> None:
    """Raise InputError naming an input whose size or modification time changed since pass 1 began."""
    for path, before in zip(paths, signatures, strict=True):
        if _signature(path) != before:
            raise InputError(f"{path} changed while data.prepare read it (size or modification time); run it again")


def _ints(values: np.ndarray) -> array:
    """A numpy integer array as a plain array of int64 (fast to index from Python)."""
    out = array("q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return out


def _add_sft(sft: SftParquetWriter | None, source: Any, case: Any, tasks: list[str], template: str, index: int) -> None:
    """The SFT rows of one case: each GRPO row's prompt (rendered exactly as for GRPO) + the source's gold response."""
    assert sft is not None and source.sft_response is not None  # PrepareConfig refuses --sft-fraction otherwise
    for k, row in enumerate(source.build_rows(case, tasks, template, SFT_SPLIT, index)):
        sft.add(
            SftRow(
                prompt=row["prompt"],
                response=source.sft_response(case),
                data_source=row["data_source"],
                index=index + k,
            )
        )


def prepare(config: PrepareConfig) -> dict[str, Any]:
    """Run both passes, write train.parquet, test.parquet and stats.json into config.output; return the stats.

    The files go into a staging directory that replaces config.output whole at the end (data/output.py).
    """
    for path in config.inputs:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--input {path}: no such file")
    out = Path(config.output)
    check_output(out, OUTPUT_FILES, config.overwrite, config.inputs)
    stats = PrepareStats()
    if config.sft_fraction:
        stats.splits = (*SPLITS, SFT_SPLIT)
    counter, budget = None, None
    if config.tokenizer is not None:
        try:
            counter = PromptCounter(config.tokenizer, config.tasks, config.template)
        except ImportError as exc:
            raise FileNotFoundError(
                f"--tokenizer needs the transformers package ({exc}); pip install transformers"
            ) from exc
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(
                f"--tokenizer {config.tokenizer}: no tokenizer can be loaded there ({exc})"
            ) from exc
        budget = config.max_prompt_tokens or default_max_prompt_tokens()
    with StagedDir(out) as stage:
        result = _prepare_into(config, stats, counter, budget, stage)
    return result


def _write_stats(stage: StagedDir, result: dict[str, Any]) -> None:
    """stats.json into the staging directory."""
    with stage.writing("stats.json") as path:
        path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _prepare_into(
    config: PrepareConfig, stats: PrepareStats, counter: PromptCounter | None, budget: int | None, stage: StagedDir
) -> dict[str, Any]:
    """Both passes, every file into the staging directory; commit it when the run has written everything."""
    out = Path(config.output)
    labels = LabelSetRecorder() if config.source == "cail2018" else None
    signatures = [_signature(p) for p in config.inputs]
    keys, files, lines, starts = _scan(config, stats, counter, budget, labels)
    if labels is not None:
        with stage.writing(LABEL_SETS_FILE):
            labels.write(stage.path, config.inputs)
    unique = _dedup(config, stats, keys, files, lines)
    stats.unique_cases = len(unique)
    plan = plan_split(
        len(unique),
        len(config.tasks),
        config.seed,
        config.train_size,
        config.test_size,
        config.test_fraction,
        config.sft_fraction,
    )
    recorded = {k: v for k, v in asdict(config).items() if k not in ("output", "overwrite")}
    recorded["inputs"] = [Path(p).name for p in config.inputs]
    if not len(unique):
        result = stats.to_dict(recorded, config.tasks, plan.quotas)
        _write_stats(stage, result)
        if stage.is_fresh():  # nothing to lose: the stats that explain every line become the output
            stage.commit()
            where = f"see {out / 'stats.json'}"
        else:  # a failed run leaves an earlier output as it was
            where = f"{out} keeps its earlier output; prepare into a new directory to get this run's stats.json"
        raise NoUsableDataError(
            f"no usable record in {', '.join(config.inputs)} (read {stats.read}, skipped "
            + ", ".join(f"{k}={v}" for k, v in sorted(stats.skipped.items()))
            + f"); {where}"
        )
    chosen = np.flatnonzero(plan.used())  # case indices in input order
    del keys
    _check_unchanged(config.inputs, signatures)
    where = unique[chosen]
    _write(config, stats, plan, chosen, files[where], lines[where], starts[where], stage)
    _check_unchanged(config.inputs, signatures)
    result = stats.to_dict(recorded, config.tasks, plan.quotas)
    _write_stats(stage, result)
    stage.commit()
    for split, requested in plan.requested.items():
        written = result["items_total"][split]
        if requested is not None and written < requested:
            logger.warning(
                "%s: %d items requested, only %d written (not enough unique cases)", split, requested, written
            )
    return result


def summary(stats: dict[str, Any], output: str) -> str:
    """A few human-readable lines about one run."""
    rec = stats["records"]
    lines = [f"{stats['config']['source']}: read {rec['read']} records, kept {rec['kept']}, skipped {rec['skipped']}"]
    if stats["skipped_by_reason"]:
        lines.append("  skipped: " + ", ".join(f"{k}={v}" for k, v in stats["skipped_by_reason"].items()))
    cases = stats["cases"]
    sft = f", sft {cases[SFT_SPLIT]}" if SFT_SPLIT in cases else ""
    lines.append(f"  cases: train {cases['train']}, test {cases['test']}{sft}, unused {cases['unused']}")
    for split in SPLITS:
        per_task = ", ".join(f"{t}={n}" for t, n in stats["items"][split].items())
        path = Path(output) / f"{split}.parquet"
        lines.append(f"  {split}: {stats['items_total'][split]} items ({per_task}) → {path}")
    if SFT_SPLIT in cases:
        path = Path(output) / "sft.parquet"
        lines.append(f"  {SFT_SPLIT}: {stats['items_total'][SFT_SPLIT]} rows (prompt + gold response) → {path}")
    tok = stats.get("prompt_tokens")
    if tok:
        over = f"; over {tok['max_prompt_tokens']}: {tok['over_budget']} skipped (prompt_too_long)"
        lines.append(
            f"  prompt tokens (longest task prompt per case, {tok['counted']} cases): p50 {tok['p50']}, "
            f"p90 {tok['p90']}, p99 {tok['p99']}, max {tok['max']}" + (over if tok["max_prompt_tokens"] else "")
        )
    if stats["unknown_charges"]:
        lines.append("  charges not in the known list: " + ", ".join(stats["unknown_charges"]))
    lines.append(f"  stats: {Path(output) / 'stats.json'}")
    return "\n".join(lines)


def _size(text: str) -> int:
    """argparse type: an int >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _tasks(text: str) -> tuple[str, ...]:
    """argparse type: comma list of task names (checked against the source's tasks in PrepareConfig)."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError("no task given; expected a comma list of task names")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m data.prepare` (issue 3 contract)."""
    p = argparse.ArgumentParser(prog="python -m data.prepare", description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, choices=SOURCES, help="input format")
    p.add_argument("--input", required=True, nargs="+", metavar="PATH", help="JSON-lines file(s); .gz is read too")
    p.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="writes DIR/{train,test}.parquet and stats.json; DIR is replaced whole when the run succeeds",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace DIR even when it holds files data.prepare does not write (they are deleted)",
    )
    p.add_argument("--tasks", type=_tasks, default=None, help="comma list (default: every task of the source)")
    p.add_argument("--train-size", type=_size, default=None, help="train items, evenly over tasks (default: all)")
    p.add_argument(
        "--test-size",
        type=_size,
        default=None,
        help="test items, evenly over tasks (default: --test-fraction of the cases, every task)",
    )
    p.add_argument("--test-fraction", type=float, default=0.2, help="test share of cases when --test-size is unset")
    p.add_argument(
        "--sft-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="share of cases for the SFT warm-up, written to DIR/sft.parquet, in neither GRPO split (safety; "
        "default 0: none)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--template",
        default=None,
        help="legal: base (default; one user message, R1-zero wrapping by the training chat template) or chat "
        "(system+user); safety: chat (the only one)",
    )
    p.add_argument(
        "--max-record-bytes",
        type=int,
        default=MAX_RECORD_BYTES,
        metavar="N",
        help=f"longer input lines are skipped as record_too_large (default: {MAX_RECORD_BYTES})",
    )
    p.add_argument(
        "--tokenizer",
        metavar="PATH",
        default=None,
        help="policy tokenizer directory: count prompt tokens (its chat template + generation prompt, as verl does), "
        "report their distribution and skip longer prompts as prompt_too_long",
    )
    p.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=None,
        metavar="N",
        help="token budget with --tokenizer (default: data.max_prompt_length of configs/base/legal_grpo.yaml)",
    )
    p.add_argument("--strict", action="store_true", help="stop at the first bad record (error names file:line)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every skipped record")
    return p


class _Terminated(BaseException):
    """SIGTERM arrived (raised by _exit_on_term, so cleanup code runs as for Ctrl-C)."""


def _exit_on_term(signum: int, frame: Any) -> None:
    """SIGTERM handler: unwind like Ctrl-C."""
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 on success, 1 when a record is bad under --strict or nothing usable was read."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        config = PrepareConfig(
            source=args.source,
            inputs=tuple(args.input),
            output=args.output,
            tasks=args.tasks,
            train_size=args.train_size,
            test_size=args.test_size,
            seed=args.seed,
            template=args.template,
            strict=args.strict,
            test_fraction=args.test_fraction,
            max_record_bytes=args.max_record_bytes,
            tokenizer=args.tokenizer,
            max_prompt_tokens=args.max_prompt_tokens,
            sft_fraction=args.sft_fraction,
            overwrite=args.overwrite,
        )
    except ValueError as exc:
        build_parser().error(str(exc))
    try:
        stats = prepare(config)
    except (BadRecordError, NoUsableDataError, FileNotFoundError, InputError, RecordError, OutputError) as exc:
        logger.error("%s", exc)
        return 1
    except (KeyboardInterrupt, _Terminated) as exc:
        stopped = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated"
        logger.error("%s: nothing written, %s is left as it was", stopped, args.output)
        return 130 if isinstance(exc, KeyboardInterrupt) else 143
    print(summary(stats, args.output))
    return 0


if __name__ == "__main__":
    # TERM (kill, a batch system's stop) unwinds like Ctrl-C: the staging directory is removed, the output untouched
    signal.signal(signal.SIGTERM, _exit_on_term)
    sys.exit(main())
