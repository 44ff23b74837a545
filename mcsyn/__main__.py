"""``python -m mcsyn``: the command line (see :mod:`mcsyn.cli`)."""
import sys

from .cli import main

sys.exit(main())
