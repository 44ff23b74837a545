"""``python -m mcsyn.validation``: the same as ``mcsyn validate``."""
import sys

from .report import main

sys.exit(main())
