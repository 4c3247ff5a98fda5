"""The `costguard` entry point (also `python -m costguard.run` and `python run.py`): the CLI in costguard/cli/."""

from costguard.cli import main

if __name__ == "__main__":
    main()
