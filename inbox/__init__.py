"""Developer tooling: the `inbox` command, the zero-setup stack, demo data."""
