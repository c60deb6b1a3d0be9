"""One module per CLI command group that outgrew cli.py; each registers itself in cli.py with one line."""
