"""``python -m lexicon_demo``: the same as ``inert demo``."""

from lexicon_demo._main import main

raise SystemExit(main())
