"""Trainer-side hooks into verl; ``recipes.trainer.cpu`` runs verl's own trainer on a machine without GPUs."""
