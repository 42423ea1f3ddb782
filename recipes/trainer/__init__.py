"""Trainer-side hooks into verl: the ``main_ppo`` entry, the agent-loop manager, step metrics, loss masking; and
``recipes.trainer.cpu``, which runs verl's own trainer on a machine without GPUs."""
