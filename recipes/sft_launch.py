"""`python -m recipes.sft_launch`, the name README shows; the code is recipes/launch/sft_launch.py."""

import sys

from recipes.launch.sft_launch import main

if __name__ == "__main__":
    sys.exit(main())
