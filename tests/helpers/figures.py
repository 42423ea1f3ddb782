"""Read back what a plot draws: every matplotlib figure saved during a test, by file name (titles, bars, points)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure


def capture_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """Figures saved from now on, by file name; each is still saved (plt.close keeps its artists readable)."""
    saved: dict[str, Figure] = {}
    original = Figure.savefig

    def record(self: Figure, fname: Any, *args: Any, **kwargs: Any) -> Any:
        saved[Path(fname).name] = self
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return saved


def suptitle(fig: Figure) -> str:
    """The figure's overall title ("" without one)."""
    return fig._suptitle.get_text() if fig._suptitle is not None else ""


def panel_titles(fig: Figure) -> list[str]:
    """Each drawn panel's title, newlines read as spaces (empty panels left out)."""
    return [ax.get_title().replace("\n", " ") for ax in fig.axes if ax.get_title()]


def bar_texts(ax: Any) -> list[str]:
    """The labels written on an axes' bars, in bar order."""
    return [t.get_text() for t in ax.texts]
