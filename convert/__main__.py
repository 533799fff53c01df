"""`python -m convert` runs the command line."""

import sys

from convert.cli import main

sys.exit(main())
