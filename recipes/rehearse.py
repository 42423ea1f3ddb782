"""`python -m recipes.rehearse`, the name README shows; the code is recipes/rehearsal/rehearse.py."""

import sys

from recipes.rehearsal.rehearse import main

if __name__ == "__main__":
    sys.exit(main())
