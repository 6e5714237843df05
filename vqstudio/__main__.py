"""`python -m vqstudio`: the command line."""

import sys

from vqstudio.cli import main

sys.exit(main())
