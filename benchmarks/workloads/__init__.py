"""Small real programs the benchmark cases record (run as scripts, not imported)."""
