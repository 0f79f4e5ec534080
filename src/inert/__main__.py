"""``python -m inert`` runs the ``inert`` command."""

import sys

from inert._cli import main

sys.exit(main())
