"""Each recipe's domain knowledge (labels, gold parsing, prompts): below rewards/, data/ and recipes/, above common/."""
