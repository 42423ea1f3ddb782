"""Evaluation: predictions (vLLM or transformers), inputs, reports and metrics plumbing, export, validation match."""
