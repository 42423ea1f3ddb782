"""The offline report's pictures: the panels that name a PNG, drawn from a run's metrics with matplotlib."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recipes.monitor.panels import Panel, Section, series_labels
from recipes.monitor.run_files import Metrics

__all__ = ["Picture", "draw_pictures", "pictures_of"]

COLUMNS = 3  # subplots per row
SUBPLOT_W, SUBPLOT_H, DPI = 4.2, 3.4, 90  # inches, inches, dots per inch: a three-panel PNG is about 1130 x 310 px
MARKERS_UP_TO = 40  # steps: fewer points than this get a marker each (a short run is a few dots, not a hidden line)


@dataclass
class Picture:
    """One PNG: its file stem, the panels in it, the keys drawn and the keys no record of the run has."""

    name: str
    panels: list[Panel]
    path: Path | None = None
    drawn: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def pictures_of(sections: Sequence[Section]) -> list[Picture]:
    """The report's pictures in section order; panels naming the same PNG share one picture."""
    pictures: dict[str, Picture] = {}
    for section in sections:
        for panel in section.panels:
            if panel.png:
                pictures.setdefault(panel.png, Picture(panel.png, [])).panels.append(panel)
    return list(pictures.values())


def draw_pictures(pictures: Sequence[Picture], metrics: Metrics, out_dir: Path) -> None:
    """Write <out_dir>/<name>.png for each picture with any of its keys logged (the others get no file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    for picture in pictures:
        picture.drawn = [k for p in picture.panels for k in p.keys if metrics.values(k)[0]]
        picture.missing = [k for p in picture.panels for k in p.keys if not metrics.values(k)[0]]
        if not picture.drawn:
            continue
        cols = min(COLUMNS, len(picture.panels))
        rows = math.ceil(len(picture.panels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(SUBPLOT_W * cols, SUBPLOT_H * rows), squeeze=False)
        for ax in axes.flat[len(picture.panels) :]:
            ax.set_visible(False)
        for ax, panel in zip(axes.flat, picture.panels, strict=False):
            ax.set_title("\n".join(textwrap.wrap(panel.title, 44)), fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
            ax.set_xlabel("step", fontsize=8)
            plotted = 0
            labels = series_labels(panel.keys)
            for n, (key, label) in enumerate(zip(panel.keys, labels, strict=True)):
                steps, values = metrics.values(key)
                if not steps:
                    continue
                # Later series are drawn thinner on top of earlier ones: equal curves stay visible as nested bands.
                wide = len(panel.keys) - 1 - n
                marker = "o" if len(steps) < MARKERS_UP_TO else None
                ax.plot(steps, values, marker=marker, markersize=3 + 1.2 * wide, linewidth=1.2 + 0.6 * wide,
                        label=label)  # fmt: skip
                plotted += 1
            if not plotted:
                ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=ax.transAxes)
            elif len(panel.keys) > 1:  # below the plot, where it hides no curve
                ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
        fig.tight_layout()
        picture.path = out_dir / f"{picture.name}.png"
        partial = picture.path.with_name(f".{picture.name}.png.partial")
        fig.savefig(partial, dpi=DPI, format="png")
        plt.close(fig)
        partial.replace(picture.path)  # a reader never sees half a picture
