"""Is this ticket file the ticket of this study job? Checked before a ticket is reused or reported.

``study run`` writes into every ticket the job it belongs to (:func:`job_record`): ``study_job``
(the job's id), ``study_hash`` (the study's ``config_hash`` of the job's configuration) and
``study_config`` (that configuration). :func:`check_ticket` compares a ticket file with a job
(a ``study.json`` entry, or a :class:`~ticketlab.study.jobs.Job`'s fields) and raises a one-line
:class:`~ticketlab.study.safepath.StudyFolderError` naming the file at the first disagreement:

1. the job entry itself: its hash is the ``config_hash`` of its configuration, and its ticket
   is ``tickets/<id>.h5`` (checked by
   :class:`~ticketlab.study.safepath.StudyFolder`: no link, a regular file);
2. the ticket records this job: the same id, the same hash, the same whole configuration (as
   canonical JSON), and the configuration's hash is that hash;
3. the ticket's recorded spec is the job's: :meth:`MineSpec.from_provenance` of the ticket against
   :func:`job_spec` (the job's :meth:`~ticketlab.study.jobs.Job.mine_kwargs` through
   :meth:`MineSpec.from_flat`), field by field (:meth:`MineSpec.by_field`), the first differing
   field named. A ticket of a ticketlab that recorded no spec is checked against what its miner
   recorded instead: method, model, data set, seed, every miner option the study gives (against
   ``method_config``), and the runner options ``scope``, ``count_rule``, ``rounds``,
   ``prune_first_layer``, ``prune_last_layer`` where the study gives them (``rounds`` is the shared
   schedule's length for shared IMP jobs);
4. **the density by count**: the masks' kept count (counted from the masks) is the count that
   the job's density asks for under the ticket's scope and count rule (the exact and truncated
   rules: equal; the threshold rule prunes ties, so at most that; the positive rule keeps every
   positive score whatever the density, so only its recorded ``target_kept`` is compared).

What it cannot catch: a file whose provenance was rewritten to agree (the provenance is not
signed); that is a forgery, not an accident, and the report's numbers are still those of the
masks in the files. A ticket written before ticketlab recorded ``study_config`` cannot be
verified: ``study run`` re-runs its job, ``study report`` refuses until it has.

Example:
    >>> from ticketlab.study.jobs import config_hash
    >>> config = {"method": "random", "model": "m", "dataset": "d", "seed": 0, "density": 0.5, "options": {}}
    >>> job = {"id": f"random-m-d-s0-d0.5-{config_hash(config)}", "hash": config_hash(config), "config": config}
    >>> prov = {"method": "random", "model": "m", "dataset": "d", "seed": 0, "scope": "global",
    ...         "count_rule": "exact", **job_record(job)}
    >>> check_provenance(prov, {"w": (2, 4)}, job, "t.h5")["density"]
    0.5
    >>> check_provenance(prov, {"w": (1, 4)}, job, "t.h5")
    Traceback (most recent call last):
    ...
    ticketlab.study.safepath.StudyFolderError: 't.h5' keeps 1 weights where density 0.5 asks for 2: not this job's ticket
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from ticketlab.deprecation import option_name
from ticketlab.errors import ConfigError
from ticketlab.spec import RUN_OPTIONS, MineSpec, field_difference
from ticketlab.study.jobs import Job, config_hash
from ticketlab.study.safepath import StudyFolder, StudyFolderError
from ticketlab.study.spec import RUNNER_OPTIONS, miner_of

#: Provenance keys that tie a ticket to its study job.
STUDY_KEYS = ("study_job", "study_hash", "study_config")


def job_record(job: Any) -> dict[str, Any]:
    """The provenance entries that tie a ticket to ``job`` (a Job or a manifest entry)."""
    get = job.get if isinstance(job, Mapping) else lambda k: getattr(job, k)
    return {"study_job": get("id"), "study_hash": get("hash"), "study_config": get("config")}


def _canonical(value: Any) -> str | None:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None


def _same(a: Any, b: Any, depth: int = 0) -> bool:
    """Equal as values: numbers by value (``1 == 1.0``, a miner may make an option a float), never a
    bool for a number, lists and tuples alike, mappings key by key; deeper than 64 levels: unequal."""
    if depth > 64:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (a != a and b != b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k], depth + 1) for k in a)
    return type(a) is type(b) and a == b


def _hash(config: Any) -> str | None:
    try:
        return config_hash(config)
    except (TypeError, ValueError, RecursionError):
        return None


def expected_kept(density: float, sizes: list[int], scope: str, count_rule: str) -> int:
    """Weights a ticket of ``density`` keeps over layers of ``sizes`` (mining's own count).

    Example:
        >>> expected_kept(0.1, [25, 5], "global", "exact"), expected_kept(0.1, [25, 5], "layer", "exact")
        (3, 4)
    """
    from ticketlab.selection import target_count

    if scope == "layer":
        return sum(target_count(density, n, count_rule) for n in sizes)
    return target_count(density, sum(sizes), count_rule)


def check_job_entry(entry: Any) -> tuple[str, str, dict[str, Any]]:
    """``(id, hash, config)`` of a manifest entry that agrees with itself, else a one-line error."""
    if not isinstance(entry, Mapping):
        raise StudyFolderError("a job of the study manifest is not a JSON object")
    jid, h, config = entry.get("id"), entry.get("hash"), entry.get("config")
    if not isinstance(jid, str) or not isinstance(h, str) or not isinstance(config, dict):
        raise StudyFolderError(f"the study manifest's job {str(jid)[:80]!r} lacks an id, a hash or a configuration")
    if _hash(config) != h:
        raise StudyFolderError(f"the study manifest's job {jid[:80]!r} does not match its hash {h[:20]!r}: "
                               "the manifest was edited")
    if entry.get("output", f"tickets/{jid}.h5") != f"tickets/{jid}.h5":
        raise StudyFolderError(f"the study manifest's job {jid[:80]!r} names the ticket "
                               f"{str(entry.get('output'))[:80]!r}, not 'tickets/{jid[:80]}.h5'")
    return jid, h, config


def check_provenance(prov: Mapping[str, Any], layers: Mapping[str, tuple[int, int]], job: Any,
                     where: str | Path) -> dict[str, Any]:
    """Check a ticket's provenance and per-layer ``(kept, size)`` against ``job`` (see the module
    docstring); return the ticket's facts (method, model, dataset, seed, density, kept, total)."""
    jid, h, config = check_job_entry(job)

    def bad(why: str) -> StudyFolderError:
        return StudyFolderError(f"'{where}' {why}: not this job's ticket")

    if prov.get("study_job") != jid:
        if "study_config" not in prov:
            raise StudyFolderError(f"'{where}' does not record its study job (written by an older ticketlab, or not "
                                   "by a study): it cannot be verified")
        raise bad(f"records the job {str(prov.get('study_job'))[:80]!r}, not {jid[:80]!r}")
    recorded = prov.get("study_config")
    if prov.get("study_hash") != h or _hash(recorded) != h:
        raise bad(f"records the configuration hash {str(prov.get('study_hash'))[:20]!r}, its configuration hashes to "
                  f"{_hash(recorded)!r}, the job's is {h!r}")
    if _canonical(recorded) != _canonical(config):
        raise bad("records another configuration than the job's")
    options = config.get("options") if isinstance(config.get("options"), dict) else {}
    if isinstance(prov.get("spec"), Mapping):
        _check_spec(prov, jid, config, bad)
    else:  # a ticket of a ticketlab that recorded no spec: the keys the miner recorded
        _check_recorded_keys(prov, config, options, bad)
    density = config.get("density")
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise bad(f"has the density {str(density)[:30]!r}")
    scope, rule = prov.get("scope", "global"), prov.get("count_rule", "exact")
    from ticketlab.selection import COUNT_RULES

    if scope not in ("global", "layer") or rule not in COUNT_RULES:
        raise bad(f"records scope {str(scope)[:20]!r} and count rule {str(rule)[:20]!r}")
    kept = sum(k for k, _ in layers.values())
    total = sum(n for _, n in layers.values())
    want = expected_kept(float(density), [n for _, n in layers.values()], scope, rule)
    if "rate_multipliers" in options:  # per-layer targets (the spec's, compared): the layers' exact counts
        want = prov.get("target_kept")
    wrong = kept != want if rule in ("exact", "truncated", "truncated_percent") else (kept > want if rule == "threshold" else False)
    if wrong:
        raise bad(f"keeps {kept} weights where density {density:g} asks for "
                  f"{'at most ' if rule == 'threshold' else ''}{want}")
    if rule in ("threshold", "positive") and prov.get("target_kept") != want:
        raise bad(f"records the target {str(prov.get('target_kept'))[:20]!r} weights where density {density:g} asks "
                  f"for {want}")
    return {"method": config["method"], "model": config["model"], "dataset": config["dataset"],
            "seed": config["seed"], "density": float(density), "kept": kept, "total": total,
            "achieved_density": kept / total if total else math.nan, "test_accuracy": prov.get("test_accuracy")}


def job_spec(config: Mapping[str, Any]) -> MineSpec:
    """The :class:`~ticketlab.spec.MineSpec` of a study job's configuration: its
    :meth:`~ticketlab.study.jobs.Job.mine_kwargs` through :meth:`MineSpec.from_flat`, without the
    run-time options (device, data root). A method variant's ``miner`` option names the
    registered method, and is no option of it. Raises :class:`ConfigError`, or ``TypeError``,
    ``KeyError``, ... for a configuration that is no mining run.

    Example:
        >>> config = {"method": "imp", "model": "conv4", "dataset": "digits", "seed": 1, "density": 0.2,
        ...           "options": {"reset": "init", "rounds": 3}, "train": {"lr": 0.01}}
        >>> job_spec(config).to_dict(changed=True)["prune"]
        {'density': 0.2, 'rounds': 3}
    """
    options = config["options"] if isinstance(config.get("options"), Mapping) else {}
    method = miner_of(config["method"], options)
    full = {"options": {}, "train": {}, "train_ticket": False, "device": "auto", **config}
    job = Job("", "", method, config["model"], config["dataset"], config["seed"], config["density"], full)
    kwargs = job.mine_kwargs(None)
    for name in (*RUN_OPTIONS, "method"):
        kwargs.pop(name, None)
    miner = dict(kwargs.pop("miner_config", None) or {})
    miner.pop("miner", None)
    return MineSpec.from_flat(method, miner_config=miner, **kwargs)


def _shown(value: Any) -> str:
    return "the default" if value is None else repr(str(value)[:60])


def _check_spec(prov: Mapping[str, Any], jid: str, config: Mapping[str, Any], bad: Any) -> None:
    """The ticket's recorded spec is the job's (:meth:`MineSpec.by_field`, the first differing
    field named). Both hold the method's options as the study gives them, so no registry (and no
    torch) is needed to compare them."""
    try:
        mined = MineSpec.from_provenance(prov)
    except ConfigError as exc:
        raise bad(f"records no readable mining spec ({str(exc)[:200]})") from None
    try:
        asked = job_spec(config)
    except (ConfigError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise StudyFolderError(f"the study manifest's job {jid[:80]!r} is no mining run "
                               f"({str(exc)[:200] or type(exc).__name__})") from None
    found = field_difference(mined.by_field(), asked.by_field())
    if found is not None:
        key, there, want = found
        raise bad(f"was mined with {key} {_shown(there)}, the job asks for {_shown(want)}")


def _check_recorded_keys(prov: Mapping[str, Any], config: Mapping[str, Any], options: Mapping[str, Any],
                         bad: Any) -> None:
    """A ticket without a spec: the keys its miner recorded agree with the job (method, model, data
    set, seed, every miner option the study gives, the runner options it gives)."""
    asked = {"method": miner_of(config.get("method"), options),
             **{key: config.get(key) for key in ("model", "dataset", "seed")}}
    for key, value in asked.items():
        if not _same(prov.get(key), value):
            raise bad(f"was mined with {key} {str(prov.get(key))[:60]!r}, the job asks for {str(value)[:60]!r}")
    method_config = prov.get("method_config") if isinstance(prov.get("method_config"), dict) else {}
    for key, value in options.items():
        if key in RUNNER_OPTIONS or key == "miner" or (key == "rate" and config.get("schedule")):  # the rate made the schedule
            continue
        if key not in method_config:  # an option's old name in the study file, its new one in the ticket
            key = option_name(str(asked["method"]), key)
        if key not in method_config or not _same(method_config[key], value):
            raise bad(f"was mined with option {key} {str(method_config.get(key))[:60]!r}, the job asks for "
                      f"{str(value)[:60]!r}")
    runner = {k: options[k] for k in ("scope", "count_rule", "prune_first_layer", "prune_last_layer", "rounds")
              if k in options}
    for new, old in (("skip_first_layer", "prune_first_layer"), ("skip_last_layer", "prune_last_layer")):
        if new in options:  # the provenance records the older names
            runner[old] = not options[new]
    if config.get("schedule"):
        runner["rounds"] = len(config["schedule"])
    for key, value in runner.items():
        if not _same(prov.get(key), value):
            raise bad(f"was mined with {key} {str(prov.get(key))[:60]!r}, the job asks for {str(value)[:60]!r}")
    if "rate_multipliers" in options:  # recorded only in a spec, which this ticket has not
        raise bad(f"was mined with rate multipliers 'None', the job asks for "
                  f"{str(options['rate_multipliers'])[:60]!r}")


def check_ticket(folder: StudyFolder, job: Any, *, missing_ok: bool = False) -> dict[str, Any] | None:
    """Check the ticket file of ``job`` in ``folder`` as :func:`check_provenance` does, reading it
    with ``read_info(verify=True)`` (masks counted, checksums read); return its facts, or ``None``
    for a missing file with ``missing_ok``."""
    from ticketlab.errors import TicketlabError
    from ticketlab.fileformat import read_info

    jid, _, _ = check_job_entry(job)
    path = folder.file(f"tickets/{jid}.h5", missing_ok=missing_ok)
    if path is None:
        return None
    try:
        info = read_info(path, verify=True)
    except StudyFolderError:
        raise
    except TicketlabError as exc:
        raise StudyFolderError(str(exc)) from None
    layers = {n: (int(v["kept"]), int(v["total"])) for n, v in info["layers"].items()}
    return check_provenance(info["provenance"], layers, job, path)


__all__ = ["STUDY_KEYS", "job_record", "check_job_entry", "check_provenance", "check_ticket", "expected_kept", "job_spec"]
