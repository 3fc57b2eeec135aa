"""python -m fastsync (and the PyInstaller entry point)."""

import sys

from fastsync.cli import main

if __name__ == "__main__":
    sys.exit(main())
