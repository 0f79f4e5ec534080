"""``python -m inert.emulator --port N``: serve the emulator in the foreground."""

import sys

from inert.emulator import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m inert.emulator"))
