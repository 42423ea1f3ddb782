"""Bottom layer: small shared utilities (Chinese numerals, progress lines, the setup hint); imports nothing of ours."""
