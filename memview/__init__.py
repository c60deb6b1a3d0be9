"""memview: record, compare and investigate the memory of processes and services."""

__version__ = "0.1.0"
