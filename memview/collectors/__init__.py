"""Collectors read memory from somewhere (a process tree, an HTTP endpoint) one reading at a time."""
