"""Each recipe's domain knowledge (labels, gold parsing, prompts): imported by data/, rewards/ and recipes/;
imports only judge/ (Chinese numerals) and itself."""
