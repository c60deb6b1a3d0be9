"""``memview compare A B [C…]``: sessions and bundles side by side (memview.compare)."""

from __future__ import annotations

import json

import click

from memview.commands.common import complete_session_or_file, db_option, fail, open_store


@click.command("compare")
@click.argument("inputs", nargs=-1, required=True, shell_complete=complete_session_or_file)
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False),
    help="check inputs (profile results, session ids, bundles) against a baseline; exit 1 on regression",
)
@click.option("--allow-missing", is_flag=True, help="with --baseline: report missing cases without failing")
@click.option(
    "--tolerance",
    "-t",
    default="+10%",
    show_default=True,
    help="how far a phase's own use (footprint, growth) may grow before it is named a regression",
)
@db_option
@click.pass_context
def compare_command(
    ctx: click.Context,
    inputs: tuple[str, ...],
    as_json: bool,
    baseline_path: str | None,
    allow_missing: bool,
    tolerance: str,
    db: str | None,
) -> None:
    """Compare sessions side by side: peak, average, final, wall time and each phase's peak and
    duration, with the change of each against the first (A).

    Each phase also shows its footprint (peak − start) and growth (end − start). A phase whose own
    use (footprint or growth) grew beyond --tolerance is named REGRESSED; its absolute peak is
    shown but never blamed (it carries what earlier phases left behind).

    Each input is a session id, a bundle (.memview.zip) or a summary JSON (memview run --json).
    Phases are matched by name, and by order for repeated names. With --baseline, the same as
    ``memview baseline check BASELINE INPUTS…`` (exit 1 on a regression, 2 on malformed input).
    """
    if baseline_path:
        from memview.commands.baseline import check

        ctx.invoke(
            check, baseline_path=baseline_path, results=inputs, allow_missing=allow_missing, as_json=as_json, db=db
        )
        return
    from memview.compare import CompareError, compare, compare_text, load_comparable

    if len(inputs) < 2:
        fail("compare needs at least two sessions or bundles", 2)
    store = None
    if any(i.isdigit() for i in inputs):
        store = open_store(db)
    try:
        result = compare([load_comparable(i, store) for i in inputs], tolerance)
    except CompareError as exc:
        fail(str(exc), 1)
    click.echo(json.dumps(result, indent=2) if as_json else compare_text(result))
