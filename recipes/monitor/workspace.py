"""A recipe's panels as a wandb workspace, built with wandb's own ``wandb-workspaces`` (no network until saved)."""

from __future__ import annotations

from collections.abc import Sequence

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from recipes.monitor.panels import Section
from recipes.trainer.val_generations import VAL_TABLE_KEY

__all__ = ["OPEN_SECTIONS", "build_workspace", "workspace_keys"]

# Sections that open expanded; the rest (timing) start folded.
OPEN_SECTIONS = frozenset({"reward", "format", "judge", "length", "language", "policy", "validation"})
# Panel size in wandb's 24-column grid: three panels a row.
PANEL_W, PANEL_H = 8, 6


def _line_plot(title: str, keys: Sequence[str]) -> wr.LinePlot:
    return wr.LinePlot(title=title, x="Step", y=list(keys), layout=wr.Layout(w=PANEL_W, h=PANEL_H))


def build_workspace(sections: Sequence[Section], entity: str, project: str, name: str, own: str = "") -> ws.Workspace:
    """The workspace: one wandb section per section, one line plot per panel; validation also shows the table of
    validation generations (recipes.trainer.val_generations). ``own`` is the recipe's section, opened too."""
    out = []
    for section in sections:
        panels: list = [_line_plot(panel.title, panel.keys) for panel in section.panels]
        if section.name == "validation":
            panels.append(wr.WeavePanelSummaryTable(table_name=VAL_TABLE_KEY, layout=wr.Layout(w=24, h=12)))
        out.append(ws.Section(name=section.name, panels=panels, is_open=section.name in OPEN_SECTIONS | {own}))
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=out,
        settings=ws.WorkspaceSettings(x_axis="Step", max_runs=10),
    )


def workspace_keys(workspace: ws.Workspace) -> list[str]:
    """Every metric key the workspace's line plots draw, each once (the tables are not metrics)."""
    keys: dict[str, None] = {}
    for section in workspace.sections:
        for panel in section.panels:
            if isinstance(panel, wr.LinePlot):
                keys.update(dict.fromkeys(str(key) for key in panel.y))
    return list(keys)
