"""`python -m recipes.preflight`, the name README shows; the code is recipes/launch/preflight.py."""

import sys

from recipes.launch.preflight import main

if __name__ == "__main__":
    sys.exit(main())
