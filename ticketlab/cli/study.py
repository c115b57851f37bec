"""``ticketlab study run STUDY.toml`` and ``ticketlab study report DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from ticketlab.cli.common import common_options, progress_for
from ticketlab.cli.render import visible


@click.group("study")
@common_options
def command() -> None:
    """Run a grid of mining jobs from a study file, and report what the tickets share."""


@command.command("run")
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study folder [default: runs/<name>].")
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="Jobs run at once (worker processes).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local process pool, or Ray tasks (pip install 'ticketlab[ray]').")
@click.option("--address", default=None, help="Address of an existing Ray cluster (with --executor ray).")
@click.option("--no-report", is_flag=True, default=False, help="Do not write the report at the end.")
@click.option("--dry-run", is_flag=True, default=False,
              help="List the jobs, what is reused and an estimated time from previous runs; run nothing, write nothing.")
@common_options
@click.pass_context
def run(ctx: click.Context, study_file: Path, output: Path | None, jobs: int, executor: str, address: str | None,
        no_report: bool, dry_run: bool) -> None:
    """Run every missing job of STUDY_FILE (finished jobs are skipped; a killed run resumes).

    \b
    ticketlab study run examples/study_lenet_digits.toml --dry-run
    ticketlab study run examples/study_lenet_digits.toml --jobs 2
    """
    from ticketlab.study import Study

    study = Study.from_toml(study_file, output)  # the whole file is validated before anything runs
    if dry_run:
        _print_plan(study.plan(), jobs)
        return
    with progress_for(ctx) as progress:
        manifest = study.run(executor=executor, jobs=jobs, address=address, progress=progress)
    counts, failed = manifest.counts, manifest.failed
    click.echo(f"study {visible(study.spec.name)}: {len(manifest['jobs'])} jobs, {counts['done']} done, "
               f"{counts['skipped']} skipped (already there), {len(failed)} failed -> {visible(study.directory)}")
    for j in failed:
        click.echo(f"  failed: {visible(j['id'])}: {visible(j['error'])}", err=True)
    if not no_report and len(failed) < len(manifest["jobs"]):
        paths = study.report()
        click.echo(f"report: {visible(paths.get('html', paths.get('md')))}")
    if failed:
        ctx.exit(1)


@command.command("report")
@click.argument("study_dir", type=click.Path(file_okay=False, path_type=Path))
@common_options
@click.pass_context
def report(ctx: click.Context, study_dir: Path) -> None:
    """Write report.html, report.md (with PNGs) and results.csv into STUDY_DIR."""
    from ticketlab.study.run import read_manifest

    read_manifest(study_dir)  # a one-line error unless STUDY_DIR is a study folder
    from ticketlab.study.report import write_report

    with progress_for(ctx) as progress:
        paths = write_report(study_dir, progress=progress)
    for kind, path in paths.items():
        click.echo(f"{visible(kind)}: {visible(path)}")


def _print_plan(plan, workers: int) -> None:  # plan: ticketlab.study.plan.StudyPlan
    """One line per job (what a run does with it, its estimated time and where that comes from),
    then the summary."""
    from ticketlab.study.plan import duration

    width = max((len(p.job.id) for p in plan.jobs), default=0)
    for p in plan.jobs:
        if p.action == "run":
            what = f"~{duration(p.seconds)} ({p.basis})" if p.seconds is not None else "no estimate (no previous run)"
        elif p.action == "shared":
            what = f"from the rounds of {visible(p.lead)}"
        else:
            what = "its verified ticket is there"
        click.echo(f"  {p.action:<6} {visible(p.job.id):<{width}}  {what}")
    click.echo(plan.summary(workers) + f" -> {visible(plan.directory)} (dry run: nothing was run or written)")
