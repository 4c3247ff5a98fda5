"""`python run.py ...` is the same as `costguard ...`."""

from costguard.run import main

if __name__ == "__main__":
    main()
