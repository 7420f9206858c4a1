"""`python3 -m reclite_convert ...` runs the command-line interface."""

import sys

from reclite_convert.cli import main

sys.exit(main())
