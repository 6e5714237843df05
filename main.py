"""Start VQ Studio: `python main.py [app options]` is `vqstudio app [app options]`."""

import sys

from vqstudio.cli import main

if __name__ == "__main__":
    sys.exit(main(["app", *sys.argv[1:]]))
