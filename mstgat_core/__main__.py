"""``python -m mstgat_core`` runs the ``mstgat`` command."""

import sys

from .cli import main

sys.exit(main())
