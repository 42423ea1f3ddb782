"""`python3 -m recipes.main_ppo`: the trainer entry the launch commands run; the code is recipes/trainer/main_ppo.py.

Imported, not run as __main__, so Ray pickles the TaskRunner by reference (recipes.trainer.main_ppo.TaskRunner).
"""

from recipes.trainer.main_ppo import main

if __name__ == "__main__":
    main()
