"""The judge audit: a recipe's pairs through the training judge, its records and its report."""
