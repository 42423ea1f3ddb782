"""Legal domain knowledge: tasks and prompts, terms, charges, articles, verdicts, label sets, agreement."""
