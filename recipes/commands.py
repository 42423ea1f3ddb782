"""`python -m recipes.commands`, the name README shows; the code is recipes/launch/commands.py."""

import sys

from recipes.launch.commands import main

if __name__ == "__main__":
    sys.exit(main())
