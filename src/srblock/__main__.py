"""``python -m srblock`` runs the command line (where the console script is not installed, e.g. from source)."""

import sys

from .cli import main

sys.exit(main())
