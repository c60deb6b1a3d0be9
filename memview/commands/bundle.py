"""``memview export`` and ``memview import``: a session to and from a trace bundle (memview.bundle)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from memview.commands.common import complete_session_id, db_option, fail, open_store


@click.command("export")
@click.argument("session_id", type=int, shell_complete=complete_session_id)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="the bundle to write (default: session-ID.memview.zip here)"
)
@click.option("--force", is_flag=True, help="replace the output file if it exists")
@db_option
def export_command(session_id: int, output: str | None, force: bool, db: str | None) -> None:
    """Write one session to a trace bundle (.memview.zip) to share or attach to a bug report.

    The bundle holds the samples (CSV), phases, events, capture artefacts, a summary and a
    trace.json that opens in Perfetto UI or chrome://tracing. Credentials in the command line,
    environment and headers are left out.
    """
    from memview.bundle import BundleError, export_session
    from memview.units import format_bytes

    store = open_store(db)
    out = Path(output) if output else Path(f"session-{session_id}.memview.zip")
    started = time.perf_counter()
    try:
        res = export_session(store, session_id, out, overwrite=force)
    except BundleError as exc:
        fail(str(exc), 1)
    took = time.perf_counter() - started
    click.echo(
        f"exported session {session_id} to {res.path} ({format_bytes(res.size_bytes)}, {res.files} files, {took:.2f}s)",
        err=True,
    )
    for warning in res.warnings:
        click.echo(f"memview: warning: {warning}", err=True)
    if res.redacted:
        click.echo(
            f"left out {len(res.redacted)} credential-looking value(s): "
            f"{', '.join(res.redacted[:5])}{' …' if len(res.redacted) > 5 else ''}",
            err=True,
        )


@click.command("import")
@click.argument("bundle", type=click.Path(dir_okay=False))
@db_option
def import_command(bundle: str, db: str | None) -> None:
    """Add the session in a trace bundle to the database (once: re-importing reports the existing id).

    Prints the session id on stdout. The bundle is checked completely first; a damaged or
    hostile file is refused with a one-line reason and the database is left unchanged.
    """
    from memview.bundle import BundleError, import_bundle

    store = open_store(db)
    try:
        res = import_bundle(store, bundle)
    except BundleError as exc:
        fail(str(exc), 1)
    if res.created:
        click.echo(f"imported {Path(bundle).name} as session {res.session_id}", err=True)
    else:
        click.echo(f"{Path(bundle).name} is already in the database as session {res.session_id}", err=True)
    click.echo(str(res.session_id))
