"""The desktop app: a thin Qt layer over the core. Nothing outside this package imports Qt."""
