"""`python -m recipes.evaluate`, the name README shows; the code is recipes/evaluation/evaluate.py."""

import sys

from recipes.evaluation.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
