"""``python -m fmad``: the command line in :mod:`fmad.cli`."""

from fmad.cli import main

raise SystemExit(main())
