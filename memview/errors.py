"""Errors the core raises for the user to read, without knowing who shows them.

The core (everything outside ``cli.py``, ``commands/`` and ``ui/``) never imports click: a bad option
value is an :class:`OptionError`, which the command line turns into a usage error (exit 2, one line)
and the desktop app into a message in its dialog. Before this module the core raised
``click.BadParameter``, so the GUI and ``memview profile`` had to import click to catch it.
"""

from __future__ import annotations


class OptionError(ValueError):
    """A value the user gave (an option, a manifest field, a dialog field) cannot be used.

    ``option`` names where it came from (``--threshold``), so each front end can say it its way;
    ``str()`` is the one line to show: ``--threshold: unknown size unit 'XB' …``.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option

    def __str__(self) -> str:
        return f"{self.option}: {self.message}" if self.option else self.message


class CommandError(Exception):
    """A command cannot go on: ``message`` is the one line to show, ``exit_code`` the status to exit with.

    Commands raise it (through :func:`memview.commands.common.fail`) instead of printing and calling
    ``sys.exit`` themselves; ``memview.cli.main`` shows it once, as ``memview: MESSAGE``, and exits
    with ``exit_code`` (memray's commands work the same way). One place decides how an error looks.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


__all__ = ["CommandError", "OptionError"]
