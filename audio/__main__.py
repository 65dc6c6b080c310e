"""`python -m audio`: the same command line as `piece`."""

from audio.cli import main

if __name__ == "__main__":
    main()
