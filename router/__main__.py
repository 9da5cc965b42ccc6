"""Entry point for `python -m router`."""

from router.cli.main import main

raise SystemExit(main())
