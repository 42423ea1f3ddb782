"""`python -m recipes.export`, the name README shows; the code is recipes/evaluation/export.py."""

import sys

from recipes.evaluation.export import main

if __name__ == "__main__":
    sys.exit(main())
