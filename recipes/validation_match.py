"""`python -m recipes.validation_match`, the name README shows; the code is recipes/evaluation/validation_match.py."""

import sys

from recipes.evaluation.validation_match import main

if __name__ == "__main__":
    sys.exit(main())
