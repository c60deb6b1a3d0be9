"""``memview profile``: run every case x input of a manifest as a session and write the results JSON.

Exit status: 0 when every run exited 0, 1 when any run failed (the results are written anyway),
2 for a manifest or option that cannot be used, 130 when interrupted (what completed is written).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from memview.commands.common import db_option, fail, open_store


@click.command()
@click.option(
    "--manifest",
    "-m",
    "manifest_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="the TOML manifest of cases (e.g. profiling/memory.toml)",
)
@click.option("--only", multiple=True, metavar="NAME", help="run only this case (repeatable)")
@click.option("--repeat", type=click.IntRange(min=1), help="runs per input; records min/median/max, uses the median")
@click.option(
    "--output-json",
    "-o",
    type=click.Path(dir_okay=False),
    help="where to write the results (default: results/memory/DATE.json)",
)
@db_option
@click.option("--quiet", "-q", is_flag=True, help="no progress lines")
@click.option(
    "--pushgateway",
    metavar="URL",
    help="push each case's peak and phase figures to this Prometheus "
    "Pushgateway at the end (job=case, instance=input; docs/ci.md)",
)
def profile(
    manifest_path: str,
    only: tuple[str, ...],
    repeat: int | None,
    output_json: str | None,
    db: str | None,
    quiet: bool,
    pushgateway: str | None,
) -> None:
    """Profile each case of a manifest over its inputs; one record per case/input in the JSON."""
    from memview.manifest import ManifestError, load
    from memview.profile import default_output
    from memview.profile import profile as run_profile

    try:
        manifest = load(manifest_path)
        cases = manifest.select(list(only))
    except ManifestError as exc:
        fail(str(exc), 2)
    if pushgateway:
        from memview.pushgateway import PushError, check_url

        try:
            check_url(pushgateway)  # a typo fails now, not after the whole batch
        except PushError as exc:
            fail(str(exc), 2)
    out = Path(output_json) if output_json else default_output()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out.parent}: {exc.strerror}", 2)
    store = open_store(db)

    def progress(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    n_inputs = sum(len(c.input_keys()) for c in cases)
    progress(
        f"memview profile: {len(cases)} case(s), {n_inputs} run(s)" + (f" x {repeat}" if repeat else "") + f" -> {out}"
    )
    results = run_profile(manifest, cases, store, repeat=repeat, progress=progress, only=list(only))
    try:
        out.write_text(json.dumps(results, indent=2) + "\n")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}", 2)
    failed = [f"{r['case']} {r['input'] or ''}".strip() for r in results["records"] if not r["ok"]]
    progress(
        f"wrote {out} ({len(results['records'])} records"
        + (f"; {len(failed)} failed: {', '.join(failed)}" if failed else "")
        + ")"
    )
    if pushgateway:
        from memview.pushgateway import push_and_tell

        if not push_and_tell(pushgateway, results, progress, lambda m: click.echo(f"memview: {m}", err=True)):
            failed.append("the push")
    if results["interrupted"]:
        sys.exit(130)
    sys.exit(1 if failed else 0)
