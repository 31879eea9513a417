"""``python -m dtgan`` runs the command-line interface."""

from dtgan.cli.main import main

raise SystemExit(main())
