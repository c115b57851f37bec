"""The study-wide sections: configuration, tickets and run times, ticket health, failures.

Every fact of the configuration is read from the tickets' provenance (verified against their
jobs when loaded) or, for what a ticket does not record, from the manifest; run times are the
wall times the runner recorded per job (``wall_seconds``), kept across re-runs.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from ticketlab.study.report.document import Code, Document, num, seconds
from ticketlab.study.report.load import READY, Entry, StudyData, number, text
from ticketlab.study.report.rules import MARK
from ticketlab.study.report.summary import why


def _distinct(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v is not None and v not in out:
            out.append(v)
    return out


def _options(d: Any) -> str:
    """``key=value, ...`` of a mapping (values as JSON); ``none`` when empty."""
    if not isinstance(d, dict) or not d:
        return "none"
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in d.items())


def _prov(entries: list[Entry], key: str) -> list[Any]:
    return _distinct(e.ticket.provenance.get(key) for e in entries)


def section_configuration(doc: Document, study: StudyData, anchors: dict[str, str]) -> None:
    anchors["configuration"] = doc.heading(2, "Study configuration")
    entries = study.entries()
    jobs = study.jobs
    methods = _distinct([*study.methods, *(text(j.get("method")) for j in jobs)])
    rows = [["study", study.name or "n/a"], ["study file", text(study.manifest.get("study_file")) or "n/a"],
            ["manifest updated", text(study.manifest.get("updated")) or "n/a"],
            ["ticketlab", ", ".join(_distinct([study.version or None, *_prov(entries, "ticketlab_version")])) or "n/a"],
            ["torch, python", "; ".join(", ".join(str(v) for v in _prov(entries, k)) or "n/a"
                                        for k in ("torch_version", "python_version"))]]
    models = _distinct(e.ticket.provenance.get("model") for e in entries) or _distinct(j.get("model") for j in jobs)
    for model in models:
        mine = [e for e in entries if e.ticket.provenance.get("model") == model]
        configs = [c for c in _prov(mine, "model_config") if c]
        totals = _prov(mine, "total")
        rows.append([f"model {model}", "; ".join(filter(None, [
            f"{', '.join(f'{int(t):,}' for t in totals)} prunable weights" if totals else "",
            f"options: {'; '.join(_options(c) for c in configs)}" if configs else ""])) or "n/a"])
    datasets = (_distinct(e.ticket.provenance.get("dataset") for e in entries)
                or _distinct(j.get("dataset") for j in jobs))
    for dataset in datasets:
        specs = [s for s in _prov([e for e in entries if e.ticket.provenance.get("dataset") == dataset], "data_spec")
                 if isinstance(s, dict)]
        facts = []
        for s in specs[:1]:
            facts.append(f"{s.get('num_classes', 'n/a')} classes")
            if isinstance(s.get("split_samples"), dict):
                facts.append("samples " + ", ".join(f"{k} {v}" for k, v in s["split_samples"].items()))
            if s.get("input_shape") is not None:
                facts.append(f"input shape {s.get('input_shape')}")
        rows.append([f"data set {dataset}", "; ".join(facts) or "n/a"])
    seeds = sorted(_distinct(j.get("seed") for j in jobs if isinstance(j.get("seed"), int)))
    densities = sorted(_distinct(number(j.get("density")) for j in jobs), reverse=True)
    rows += [["seeds", ", ".join(str(s) for s in seeds)],
             ["densities", ", ".join(num(d) for d in densities)],
             ["methods", ", ".join(methods) or "none"]]
    trained = [e for e in entries if e.ticket.provenance.get("trained") is True]
    recipes = _distinct(e.ticket.provenance.get("train_config") for e in trained)
    for i, recipe in enumerate(recipes):
        users = _distinct(e.method for e in trained if e.ticket.provenance.get("train_config") == recipe)
        label = "training recipe" + (f" {i + 1}" if len(recipes) > 1 else "")
        rows.append([label, f"{_options(recipe)} (tickets of {', '.join(users)})"])
    untrained = _distinct(e.method for e in entries if e.ticket.provenance.get("trained") is not True)
    rows.append(["trained tickets", (", ".join(_distinct(e.method for e in trained)) or "none")
                 + (f"; not trained: {', '.join(untrained)}" if untrained else "")])
    rows.append(["device", ", ".join(str(v) for v in _prov(entries, "device")) or "n/a"])
    doc.table(["", "value"], rows)
    per = []
    for m in methods:
        mine = [e for e in entries if e.method == m]
        job = next((j for j in jobs if j.get("method") == m and isinstance(j.get("config"), dict)), None)
        options = job["config"].get("options") if job else None
        per.append([m, _options(options), "; ".join(_options(c) for c in _prov(mine, "method_config")) or "n/a",
                    ", ".join(str(v) for v in _prov(mine, "scope")) or "n/a",
                    ", ".join(str(v) for v in _prov(mine, "count_rule")) or "n/a",
                    ", ".join(num(int(v)) for v in sorted(_distinct(number(e.ticket.provenance.get("rounds"))
                                                                    for e in mine))) or "n/a"])
    doc.para("Per method: the options the study file sets, the miner's whole configuration as its tickets record "
             "it, and the runner's scope, count rule and rounds (one value per density where they differ).")
    doc.table(["method", "study file options", "miner configuration", "scope", "count rule", "rounds"], per)


def ticket_counts(study: StudyData) -> dict[str, int]:
    """What the tickets are: ready (a file that loads and is verified as its job's), and of those
    mined by the last ``study run`` or reused by it; failed, pending, unusable (finished without a
    usable ticket)."""
    loaded = {e.job_id for e in study.entries()}
    status = {text(j.get("id")): j.get("status") for j in study.jobs}
    return {"jobs": len(study.jobs), "ready": len(loaded),
            "mined": sum(1 for j in loaded if status.get(j) == "done"),
            "reused": sum(1 for j in loaded if status.get(j) == "skipped"),
            "failed": sum(1 for s in status.values() if s == "failed"),
            "pending": sum(1 for s in status.values() if s not in (*READY, "failed")),
            "unusable": len(study.problems)}


def section_tickets(doc: Document, study: StudyData, counts: dict[str, int], anchors: dict[str, str]) -> None:
    anchors["tickets"] = doc.heading(2, "Tickets and run times")
    doc.para(f"{counts['ready']} of {counts['jobs']} tickets are ready: their files exist, load and are verified as "
             f"their jobs' ({counts['mined']} mined by the last study run, {counts['reused']} made by an earlier run "
             f"and reused). {counts['failed']} failed, {counts['pending']} pending, {counts['unusable']} finished "
             "without a usable ticket (see Failures). Times: the wall time of each job as the runner measured it "
             "(with the study's number of parallel jobs), kept when a later run reuses the ticket.")
    loaded = {e.job_id: e for e in study.entries()}
    rows = []
    total_all, n_all = 0.0, 0
    methods = _distinct([*study.methods, *(text(j.get("method")) for j in study.jobs)])
    for m in methods:
        mine = [j for j in study.jobs if text(j.get("method")) == m]
        ready = [j for j in mine if text(j.get("id")) in loaded]
        times = [number(j.get("wall_seconds")) for j in ready]
        known = [t for t in times if t is not None]
        total = sum(known) if known else None
        shared = any("shared_run" in loaded[text(j.get("id"))].ticket.provenance for j in ready)
        note = "one run per seed gives every density's ticket (its time is on one job)" if shared else ""
        if known and len(known) < len(ready):
            note = "; ".join(filter(None, [note, f"{len(ready) - len(known)} tickets without a recorded time"]))
        rows.append([m, str(len(mine)), str(len(ready)), str(sum(1 for j in mine if j.get("status") == "failed")),
                     seconds(total), seconds(total / len(ready)) if total is not None and ready else "n/a", note])
        if total is not None:
            total_all, n_all = total_all + total, n_all + len(ready)
    rows.append(["all", str(counts["jobs"]), str(counts["ready"]), str(counts["failed"]),
                 seconds(total_all if n_all else None),
                 seconds(total_all / n_all) if n_all else "n/a", ""])
    doc.table(["method", "jobs", "tickets ready", "failed", "time (sum of jobs)", "time per ready ticket", "note"],
              rows)
    doc.para(runs_sentence(study.manifest))


def runs_sentence(manifest: dict) -> str:
    """How long the study took on the clock: every ``study run`` invocation that the manifest records.

    Example:
        >>> runs_sentence({"runs": [{"started": "2026-12-05T10:00:00+00:00", "wall_seconds": 3600.0, "workers": 2,
        ...                          "executor": "local", "jobs_to_run": 90, "finished": "x"}]})
        'Wall-clock time of the study: 1 h 00 min in 1 invocation of study run (2026-12-05: 90 jobs to run, 2 local workers, 1 h 00 min).'
    """
    from ticketlab.study.run import previous_runs

    runs = previous_runs(manifest)
    if not runs:
        return "The manifest records no study run's wall-clock time (written by an older ticketlab)."
    walls = [r.get("wall_seconds") for r in runs]
    parts = [f"{text(r.get('started'))[:10]}: {r.get('jobs_to_run', '?')} jobs to run, {r.get('workers', '?')} "
             f"{text(r.get('executor'))} worker{'s' if r.get('workers') != 1 else ''}, "
             + (seconds(r.get("wall_seconds")) if r.get("wall_seconds") is not None else "no time recorded")
             + ("" if r.get("finished") else ", interrupted") for r in runs]
    total = sum(w for w in walls if w is not None)
    return (f"Wall-clock time of the study: {seconds(total)} in {len(runs)} invocation{'s' if len(runs) > 1 else ''} "
            f"of study run ({'; '.join(parts)}).")


def section_health(doc: Document, study: StudyData, anchors: dict[str, str]) -> None:
    """Every unhealthy ticket with its reasons; the counts; a ``health`` row per ticket in the CSV."""
    anchors["health"] = doc.heading(2, "Ticket health")
    entries = []
    for (model, dataset), g in study.groups.items():
        for es in g.values():
            for e in es:
                entries.append(e)
                h = e.health
                doc.row(section="health", model=model, dataset=dataset, density=e.density, method_a=e.method,
                        seed_a=e.seed, label_a=e.label, metric="unhealthy",
                        value=None if h.healthy is None else int(h.healthy is False), note=h.summary())
    sick = [e for e in entries if e.unhealthy]
    unknown = sum(1 for e in entries if e.health.healthy is None)
    body = (f"{len(sick)} of {len(entries)} tickets are unhealthy (ticketlab.health: a layer with no effective "
            "weight, a class without an input-to-output path, or a recorded test accuracy within the 99% binomial "
            "band of 1 / classes)")
    if sick:
        body += (f": {why(sick)}. They are marked {MARK.strip()} in every table and figure, and every pair that "
                 "holds one is left out of the claims of \"What this says\" and of the key findings")
    if unknown:
        body += (f". {unknown} tickets record no topology, so whether their classes are reachable is unknown; "
                 "they are kept")
    doc.para(body + ".")
    doc.table(["ticket", "job", "density", "why"], [[e.label, e.job_id, num(e.density), e.health.summary()]
                                                    for e in sick])


def section_failures(doc: Document, study: StudyData, anchors: dict[str, str]) -> None:
    anchors["failures"] = doc.heading(2, "Failures")
    failed = [j for j in study.jobs if j.get("status") == "failed"]
    rows = [[text(j.get("id")), text(j.get("method")), text(j.get("seed")), text(j.get("density")),
             text(j.get("error"))] for j in failed]
    rows += [[jid, "", "", "", f"not in the report: {reason}"] for jid, reason in study.problems]
    pending = sum(1 for j in study.jobs if j.get("status") not in (*READY, "failed"))
    doc.para(f"{len(failed)} failed jobs, {len(study.problems)} finished jobs without a usable ticket, "
             f"{pending} pending jobs." if rows or pending else "No job failed.")
    doc.table(["job", "method", "seed", "density", "error"], rows)


def regenerate(doc: Document, study_dir: Any, source: Any) -> None:
    """How to make this report again (commands as code)."""
    spans: list[Any] = []
    if isinstance(source, str) and source:
        spans += ["Regenerated by ", Code(f"ticketlab study run {source} -o {study_dir}"),
                  " (finished jobs are reused) or, from the tickets alone, "]
    else:
        spans += ["Regenerated from the tickets by "]
    spans += [Code(f"ticketlab study report {study_dir}"), "."]
    doc.para(spans)
