"""``write_report``: the sections in their order, the files written, stale figures removed."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ticketlab.atomic import atomic_write_text
from ticketlab.progress import NullProgress
from ticketlab.study.report import front
from ticketlab.study.report.accuracy import section_accuracy
from ticketlab.study.report.context import Context, GroupResult
from ticketlab.study.report.document import FIGURE_DIR, Document
from ticketlab.study.report.figures import styles
from ticketlab.study.report.graph import describe, graph_metrics, section_graph
from ticketlab.study.report.load import load_study, sick_methods
from ticketlab.study.report.overlap import section_overlap, section_vs_density, section_within
from ticketlab.study.report.profiles import section_profiles
from ticketlab.study.report.rules import MARK, SPREAD
from ticketlab.study.report.summary import findings_of_study, group_findings, section_summary
from ticketlab.study.run import read_manifest
from ticketlab.study.safepath import StudyFolder, StudyFolderError

#: The list of the PNGs that ticketlab wrote in :data:`FIGURE_DIR` (the only ones it ever deletes).
WRITTEN = f"{FIGURE_DIR}/written.json"
#: Names of the report's figures (``NN-slug.png``); a listed name of another shape is ignored.
_FIGURE_NAME = re.compile(r"[0-9]{2,4}-[A-Za-z0-9-]{1,40}\.png")
#: Largest list of written figures read (bytes); a longer one is refused.
_WRITTEN_BYTES = 1 << 20


def _written(folder: StudyFolder) -> list[str]:
    """The figures an earlier report wrote (:data:`WRITTEN`), each checked as a path ticketlab may
    delete (a link there is refused now, before anything is written). Names of another shape than
    the report's own are ignored; figures of reports older than the list are never deleted."""
    if folder.path(FIGURE_DIR).exists():
        folder.folder(FIGURE_DIR)
    path = folder.file(WRITTEN, missing_ok=True)
    if path is None:
        return []
    if path.stat().st_size > _WRITTEN_BYTES:
        raise StudyFolderError(f"'{path}' is larger than {_WRITTEN_BYTES} bytes: not a list ticketlab wrote")
    try:
        names = json.loads(path.read_text(encoding="utf-8")).get("written")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        raise StudyFolderError(f"'{path}' is not the list of figures ticketlab writes") from None
    if not isinstance(names, list):
        raise StudyFolderError(f"'{path}' is not the list of figures ticketlab writes")
    out = []
    for name in names:
        if isinstance(name, str) and _FIGURE_NAME.fullmatch(name) and name not in out:
            folder.path(f"{FIGURE_DIR}/{name}")
            out.append(name)
    return out


def _write_written(folder: StudyFolder, names: list[str]) -> None:
    text = json.dumps({"written": names, "note": "PNGs ticketlab wrote here; the next report deletes those it "
                       "does not write again, and nothing else"}, indent=1) + "\n"
    atomic_write_text(folder.writable(WRITTEN), text)


def write_report(study_dir: Path, *, progress: NullProgress | None = None) -> dict[str, Path]:
    """Write ``report.md`` (PNGs in ``report_figures/``), ``report.html`` and ``results.csv`` for
    the study in ``study_dir``; returns ``{"markdown", "html", "csv", "figure:<name>": path}``.

    Only jobs whose status is ``done`` or ``skipped`` and whose ticket file exists and loads are
    used; failed jobs and unusable entries are listed in the report's "Failures" section.

    Example:
        >>> import tempfile, json
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "study.json").write_text(json.dumps({"name": "empty", "jobs": []}))
        >>> sorted(write_report(d))
        ['csv', 'html', 'markdown']
    """
    study_dir = Path(study_dir)
    progress = progress or NullProgress()
    folder = StudyFolder(study_dir)
    folder.path(FIGURE_DIR)  # links are refused before anything is written
    for rel in ("report.md", "report.html", "results.csv"):
        folder.writable(rel)
    earlier = _written(folder)
    study = load_study(study_dir, progress)
    doc = Document(folder)
    title = f"Study report: {study.name or study_dir.name}"
    doc.heading(1, title)
    counts = front.ticket_counts(study)
    sick = [e for e in study.entries() if e.unhealthy]
    doc.para(f"What the tickets of this study share, each number beside what chance gives. ticketlab "
             f"{study.version or 'n/a'}; {counts['ready']} of {counts['jobs']} tickets ready"
             + (f", {len(sick)} of them unhealthy (marked {MARK.strip()}; see Ticket health)" if sick else "")
             + f"; methods: {', '.join(study.methods) or 'none'}. Lift = Jaccard / expected Jaccard of random masks "
             f"with the same per-layer kept counts (1 = chance). Spreads are {SPREAD} over seeds or seed pairs.")
    front.regenerate(doc, study_dir, read_manifest(study_dir).get("study_file"))
    anchors: dict[str, str] = {"findings": doc.heading(2, "Key findings")}
    findings_at = len(doc.blocks)
    anchors["contents"] = doc.heading(2, "Contents")
    doc.contents()
    front.section_configuration(doc, study, anchors)
    front.section_tickets(doc, study, counts, anchors)
    findings = []
    style = styles(study.methods)
    names = graph_metrics()
    with progress.task("report: sections", total=sum(len(g) for g in study.groups.values())) as task:
        for (model, dataset), by_density in study.groups.items():
            ctx = Context(model, dataset, study.methods, style)
            res = GroupResult()
            res.anchors["group"] = doc.heading(2, ctx.where)
            densities = sorted(by_density, reverse=True)
            doc.heading(3, "Overlap and within- vs across-method")
            for d in densities:
                ov = section_overlap(doc, ctx, d, by_density[d], res)
                if ov is not None:
                    section_within(doc, ctx, d, ov, res)
            section_vs_density(doc, ctx, res, sick_methods(e for es in by_density.values() for e in es))
            res.anchors["profiles"] = doc.heading(3, "Per-layer densities")
            for d in densities:
                section_profiles(doc, ctx, d, by_density[d], res)
            describe(doc, res, names)
            for d in densities:
                section_graph(doc, ctx, d, by_density[d], names, res)
                task.advance()
            section_accuracy(doc, ctx, by_density, res)
            section_summary(doc, ctx, res)
            findings += group_findings(ctx, res, named=len(study.groups) > 1)
    front.section_health(doc, study, anchors)
    front.section_failures(doc, study, anchors)
    doc.insert_bullets(findings_at, findings + findings_of_study(counts, sick, anchors), css="findings")

    md = atomic_write_text(folder.writable("report.md"), doc.markdown())
    page = atomic_write_text(folder.writable("report.html"), doc.html(title))
    table = atomic_write_text(folder.writable("results.csv"), doc.csv())
    stale = [name for name in earlier if name not in doc.figures]  # figures of an earlier report, not of this one
    if doc.figures or earlier:
        folder.folder(FIGURE_DIR, create=True)
        _write_written(folder, list(doc.figures) + stale)  # a kill before the deletes leaves them listed
        for name in stale:
            folder.remove(f"{FIGURE_DIR}/{name}")
        _write_written(folder, list(doc.figures))
    out = {"markdown": md, "html": page, "csv": table}
    out.update({f"figure:{name}": path for name, path in doc.figures.items()})
    return out
