"""``memview baseline update`` and ``memview baseline check``: keep a lean baseline, fail on regressions.

``check`` exits 0 when every figure is within its tolerance, 1 when any regressed, failed or is
missing, 2 when the baseline or results cannot be read. The logic is :func:`memview.baseline.check`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from memview.commands.common import complete_session_or_file, db_option, fail


@click.group()
def baseline() -> None:
    """Write a baseline from profile results, or check results against one."""


@baseline.command()
@click.argument("results", nargs=-1, required=True, shell_complete=complete_session_or_file)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="the baseline file to write (updated in place when it exists)",
)
@click.option("--tolerance", "-t", help="tolerance for the entries written, e.g. '+10%' or '+10% or +5MB'")
@click.option("--prune", is_flag=True, help="drop cases that are not in these results")
@db_option
def update(results: tuple[str, ...], output: str, tolerance: str | None, prune: bool, db: str | None) -> None:
    """Write OUTPUT from RESULTS (memview profile JSON files or session ids)."""
    from memview.baseline import dumps
    from memview.baseline import update as make
    from memview.baseline_files import BaselineError, load_baseline, load_results

    try:
        docs = load_results(list(results), db)
        previous = load_baseline(output) if Path(output).exists() else None
        doc, notes = make(docs, previous, tolerance=tolerance, prune=prune)
    except BaselineError as exc:
        fail(str(exc))
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(dumps(doc))
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    for note in notes:
        click.echo(note, err=True)
    n = sum(len(v) for v in doc["cases"].values())
    click.echo(f"wrote {output}: {len(doc['cases'])} case(s), {n} entr{'y' if n == 1 else 'ies'}", err=True)


@baseline.command()
@click.argument("baseline_path", metavar="BASELINE")
@click.argument("results", nargs=-1, required=True, shell_complete=complete_session_or_file)
@click.option("--allow-missing", is_flag=True, help="report baseline entries missing from the results without failing")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON instead of the table")
@db_option
def check(baseline_path: str, results: tuple[str, ...], allow_missing: bool, as_json: bool, db: str | None) -> None:
    """Compare RESULTS (profile JSON files or session ids) with BASELINE; exit 1 on a regression."""
    from memview.baseline import check as run_check
    from memview.baseline import evaluate, exit_code
    from memview.baseline_files import BaselineError, load_baseline, load_results

    try:
        base = load_baseline(baseline_path)
        docs = load_results(list(results), db)
    except BaselineError as exc:
        fail(str(exc))
    if as_json:
        try:
            rows = evaluate(base, docs, allow_missing=allow_missing)
        except BaselineError as exc:
            fail(str(exc))
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        sys.exit(exit_code(rows))
    text, code = run_check(base, docs, allow_missing=allow_missing)
    click.echo(text, err=code == 2)
    sys.exit(code)
