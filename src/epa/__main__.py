"""``python -m epa``."""

import sys

from epa.cli.main import main

sys.exit(main())
