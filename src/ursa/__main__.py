"""python -m ursa: the same as the `ursa` command."""
import sys

from .cli import main

sys.exit(main())
