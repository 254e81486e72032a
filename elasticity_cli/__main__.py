"""Allows `python -m elasticity_cli`."""

from elasticity_cli.main import main

raise SystemExit(main())
