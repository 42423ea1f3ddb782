"""The contest's own label lists for ``cail_score_official``, recorded from the CAIL2018 files the user prepares.

The official CAIL2018 judger scores charges and articles over the contest's fixed lists (202 charges, 183 articles:
accu.txt / law.txt of the release). We do not ship those files. Instead ``python -m data.prepare --source cail2018``
records every charge and article that occurs in the usable records it reads and writes them as ``label_sets.json``
beside the prepared parquet; ``evaluate`` reads that file (or ``--labels FILE``, same format). Every CAIL2018 file
carries labels from those lists only, so the lists observed over a large file (the exercise or first-stage train
file) are the contest's lists; over a small file they are a subset (the report prints the sizes next to 202 / 183).

File format (JSON): ``{"source": str, "inputs": [file names], "records": int, "charges": [names], "articles":
[ints]}``; charge names are normalized as everywhere else (brackets dropped, trailing 罪).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CAIL2018_SIZES",
    "LABEL_SETS_FILE",
    "LabelSetRecorder",
    "LabelSets",
    "load_label_sets",
    "resolve_label_sets",
]

LABEL_SETS_FILE = "label_sets.json"
CAIL2018_SIZES = {"charges": 202, "articles": 183}
"""Sizes of the official CAIL2018 lists: a score is comparable with published ones when the lists have these sizes."""


@dataclass(frozen=True)
class LabelSets:
    """Charge and article lists of one contest (charges canonical, as evaluate compares them)."""

    charges: frozenset[str]
    articles: frozenset[int]
    source: str
    path: str

    def for_task(self, task: str) -> frozenset:
        """The list of one task: 'charge' or 'article'."""
        return self.charges if task == "charge" else self.articles

    def describe(self) -> dict[str, Any]:
        """Where the lists come from and their sizes (for metrics.json)."""
        return {
            "path": self.path,
            "source": self.source,
            "charges": len(self.charges),
            "articles": len(self.articles),
            "official_sizes": dict(CAIL2018_SIZES),
            "full_lists": len(self.charges) == CAIL2018_SIZES["charges"]
            and len(self.articles) == CAIL2018_SIZES["articles"],
        }


class LabelSetRecorder:
    """Collects the labels seen in CAIL2018 records (data.prepare, pass 1) and writes label_sets.json."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.charges: set[str] = set()
        self.articles: set[int] = set()
        self.records = 0

    def add(self, charges: Iterable[str], articles: Iterable[int]) -> None:
        """One usable record's normalized charges and article numbers."""
        self.records += 1
        self.charges.update(charges)
        self.articles.update(articles)

    def write(self, out_dir: str | Path, inputs: Iterable[str]) -> Path:
        """Write out_dir/label_sets.json (sorted, so the same inputs give the same file)."""
        body = {
            "source": "labels observed in the CAIL2018 input records (meta.accusation, meta.relevant_articles)",
            "inputs": [Path(p).name for p in inputs],
            "records": self.records,
            "charges": sorted(self.charges),
            "articles": sorted(self.articles),
        }
        path = Path(out_dir) / LABEL_SETS_FILE
        path.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path


def load_label_sets(path: str | Path) -> LabelSets:
    """Read a label_sets.json; ValueError naming the file and field when it is not one."""
    from data.domains.legal.charges import canonical_charge

    path = Path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--labels {path}: not a readable JSON file ({exc})") from exc
    if not isinstance(body, dict):
        raise ValueError(f"--labels {path}: expected a JSON object with 'charges' and 'articles'")
    charges, articles = body.get("charges"), body.get("articles")
    if not isinstance(charges, list) or not charges or not all(isinstance(c, str) and c.strip() for c in charges):
        raise ValueError(f"--labels {path}: 'charges' must be a non-empty list of charge names")
    if not isinstance(articles, list) or not articles:
        raise ValueError(f"--labels {path}: 'articles' must be a non-empty list of article numbers")
    if any(isinstance(a, bool) or not isinstance(a, int) for a in articles):
        raise ValueError(f"--labels {path}: 'articles' must hold integers only")
    canonical = frozenset(c for c in map(canonical_charge, charges) if c)
    return LabelSets(canonical, frozenset(articles), str(body.get("source") or "given by --labels"), str(path))


def resolve_label_sets(labels: str | Path | None, data_path: str | Path) -> tuple[LabelSets | None, str]:
    """The lists for cail_score_official: --labels FILE, else label_sets.json beside --data; (None, why) when none."""
    if labels is not None:
        return load_label_sets(labels), ""
    beside = Path(data_path).with_name(LABEL_SETS_FILE)
    if beside.is_file():
        return load_label_sets(beside), ""
    return None, (
        f"no contest label lists: {beside} not found and no --labels given (data.prepare --source cail2018 writes "
        "it beside the parquet)"
    )
