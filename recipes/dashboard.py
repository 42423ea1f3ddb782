"""`python -m recipes.dashboard`, the name README shows; the code is recipes/monitor/dashboard.py."""

import sys

from recipes.monitor.dashboard import main

if __name__ == "__main__":
    sys.exit(main())
