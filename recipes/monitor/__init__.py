"""Watching a run: the panels a recipe's training shows (wandb workspace and offline report) and their inputs.

- ``panels``: what to plot for a recipe, built from its reward outputs, its step metrics and verl's keys;
- ``workspace``: those panels as a saved wandb workspace (``python -m recipes.dashboard``);
- ``run_files``, ``plots``, ``report``: the same pictures offline from a run's files (``python -m recipes.run_report``);
- ``dashboard``, ``run_report``: the two commands (run as ``python -m recipes.dashboard`` / ``recipes.run_report``).

The validation-generations table the trainer logs is ``recipes.trainer.val_generations``.
"""
