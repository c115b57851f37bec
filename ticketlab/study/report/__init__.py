"""The study report: what the tickets of a study share, each number beside what chance gives.

:func:`write_report` reads ``study.json`` (the manifest the runner writes) and the ticket files it
names, and writes into the study folder ``report.md`` (figures as PNGs in ``report_figures/``),
``report.html`` (the same content, figures embedded as base64 data URIs, no script and no external
resource; every string is HTML-escaped) and ``results.csv`` (one tidy row per number of the report).

The page, in order (one module each):

* key findings (``summary.py``): a short list of sentences with their numbers, each linking to the
  section behind it; a table of contents (``document.py``);
* the configuration and the tickets with their run times (``front.py``): models, data, recipe,
  seeds, densities, every method's options, versions; what each ticket is (ready, of which mined by
  the last run or reused; failed; pending) and the time each method took;
* per (model, data set) and density (``overlap.py``): the Jaccard of every pair of tickets and its
  lift over random masks with the same per-layer kept counts, as a clustered heatmap with
  dendrograms (the heatmap of ``compare --matrix``); method pairs; within- vs across-method lift
  with the effect, its interval and what the test can resolve; lift vs density in small multiples;
* per-layer densities on a log axis and Jensen-Shannon distances of the allocations
  (``profiles.py``); graph properties of the registered graph metric groups and sign agreement
  beside a random mask (``graph.py``); accuracy vs density beside the dense network and chance
  (``accuracy.py``); "What this says" (``summary.py``);
* ticket health and failures (``front.py``).

The statistics are ``ticketlab.metrics``' own (``chance.expected_jaccard_matrix``,
``chance.normal_tails``, ``sparsity.js_matrix``, ``stats.permutation_test``, ...); the thresholds and
seeds the text follows are in ``rules.py``. Unhealthy tickets (:func:`ticketlab.health`: a
collapsed layer, a class without an input-to-output path, an accuracy at chance) are marked with
:data:`MARK` in every table and figure and left out of every claim, which says how many and why.
Spreads are min-max over seeds or seed pairs throughout.

Example:
    >>> import tempfile, json
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "study.json").write_text(json.dumps({"name": "empty", "jobs": []}))
    >>> sorted(write_report(d))
    ['csv', 'html', 'markdown']
"""

from ticketlab.study.report.build import WRITTEN, write_report
from ticketlab.study.report.document import COLUMNS, FIGURE_DIR
from ticketlab.study.report.rules import (
    ALPHA, BASELINE_SEED, EFFECT, GRAPH_GROUPS, LIFT_THRESHOLD, MARK, N_PERMUTATIONS, PERMUTATION_SEED,
)
from ticketlab.study.run import read_manifest

__all__ = ["write_report", "read_manifest", "ALPHA", "BASELINE_SEED", "COLUMNS", "EFFECT", "FIGURE_DIR", "GRAPH_GROUPS",
           "LIFT_THRESHOLD", "MARK", "N_PERMUTATIONS", "PERMUTATION_SEED", "WRITTEN"]
