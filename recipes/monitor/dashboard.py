"""A wandb workspace per recipe that opens ready: sections of panels built from the recipe's metrics and verl's.

    python -m recipes.dashboard --recipe legal --entity E --project legal-grpo   # saves it, prints its URL
    python -m recipes.dashboard --recipe safety --print-keys                     # every key the panels plot

Sections: reward (overall and per task), format, judge (calls, latency, failures, unreadable replies, agreement with
the rules, unscored responses), length (min/mean/max, clip ratio), language (Chinese share), policy (pg loss, KL,
entropy, grad norm), the recipe's own (safety: MAE, within-5, ...), validation (with the table of validation
generations), timing. The keys come from recipes.monitor.panels. Saving needs the network and a wandb login
(``wandb login`` or WANDB_API_KEY); ``--print-keys`` needs neither. The offline twin: ``python -m recipes.run_report``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.monitor.panels import recipe_sections
from recipes.recipe import KNOWN_RECIPES, load_recipe


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m recipes.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, choices=KNOWN_RECIPES, help="whose panels (recipes/<name>/)")
    parser.add_argument("--entity", help="wandb entity (user or team) the runs log to")
    parser.add_argument("--project", help="wandb project the runs log to (trainer.project_name, e.g. legal-grpo)")
    parser.add_argument("--name", help="workspace name (default: '<recipe> GRPO: what the model learns')")
    parser.add_argument("--val-n", type=int, default=1, help="actor_rollout_ref.rollout.val_kwargs.n of the runs "
                        "(verl names validation means mean@N; default 1)")  # fmt: skip
    parser.add_argument("--print-keys", action="store_true", help="print every metric key the panels plot, one a "
                        "line, and exit (no network)")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the keys, or save the workspace and print its URL."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.val_n < 1:
        parser.error(f"--val-n must be >= 1, got {args.val_n}")
    from recipes.monitor.workspace import build_workspace, workspace_keys

    recipe = load_recipe(args.recipe)
    name = args.name or f"{recipe.name} GRPO: what the model learns"
    sections = recipe_sections(recipe, val_n=args.val_n)
    if args.print_keys:
        workspace = build_workspace(sections, args.entity or "-", args.project or "-", name, own=recipe.name)
        sys.stdout.write("".join(f"{key}\n" for key in workspace_keys(workspace)))
        return 0
    if not args.entity or not args.project:
        parser.error("--entity and --project are needed to save the workspace (or pass --print-keys)")
    workspace = build_workspace(sections, args.entity, args.project, name, own=recipe.name)
    try:
        workspace.save()
        url = workspace.url
    except Exception as exc:  # wandb's errors (no login, no network, no such entity) end here as one line
        sys.stderr.write(
            f"dashboard: error: could not save the workspace to wandb {args.entity}/{args.project}: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]} — log in (wandb login, WANDB_API_KEY) and "
            "check the entity and project\n"
        )
        return 1
    sys.stdout.write(f"{url}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
