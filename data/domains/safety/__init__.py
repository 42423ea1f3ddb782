"""Content-safety domain knowledge: dimensions, gold, the answer parser, prompts, judge wording, metrics."""
