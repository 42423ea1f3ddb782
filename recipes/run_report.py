"""`python -m recipes.run_report`, the name README shows; the code is recipes/monitor/run_report.py."""

import sys

from recipes.monitor.run_report import main

if __name__ == "__main__":
    sys.exit(main())
