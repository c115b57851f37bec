"""Metrics: compare tickets against each other and against chance. Pure numpy/scipy, no torch.

One file per family; importing this package registers every built-in metric:

* ``overlap.py`` -- weight-level Jaccard, Dice, overlap coefficient, relative intersection,
  Hamming, Cohen's kappa, each with its chance expectation (``chance.py``: hypergeometric nulls;
  ``degree.py``: the degree-preserving null, sampled, with ``compare(..., null="degree")``);
* ``units.py`` -- alive units / kernels and empty kernels versus chance;
* ``sparsity.py`` -- per-layer density and allocation profiles, L1 / Jensen-Shannon distances;
* ``signs.py`` -- sign preservation within a ticket, sign agreement between tickets;
* ``graph.py`` -- effective masks, path counts, dead units, degrees, Ramanujan spectral gap;
* ``relational.py`` -- You et al. 2020's clustering C and path length L of each layer's relational
  graph, against random masks and the degree-preserving null;
* ``align.py`` -- permutation alignment of two tickets (weight matching), ``compare(..., align=...)``;
* ``many.py`` -- pairwise matrices, clustering, MDS embedding, heatmaps (:func:`plot_heatmap`);
* ``stats.py`` -- a permutation test, what it can resolve, a bootstrap interval of a difference;
* ``compare.py`` -- :func:`compare`, the tidy-record front end the CLI calls;
* ``registry.py`` -- :func:`register` for your own metrics; ``schema.py`` -- the output schema.

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> a = Ticket(masks={"w": np.array([1, 1, 0, 0], bool)})
    >>> b = Ticket(masks={"w": np.array([1, 1, 1, 0], bool)})
    >>> [round(r["value"], 3) for r in compare([a, b], ["jaccard", "dice"])]
    [0.667, 0.8]
"""

from ticketlab.metrics.base import MEAN, TOTAL, WMEAN, Cache, Counts, pair_counts
from ticketlab.metrics.registry import (
    GROUPS,
    Metric,
    default_metrics,
    get_metric,
    list_groups,
    list_metrics,
    load_plugins,
    register,
    resolve_metrics,
    unregister,
)

# Family modules register their metrics on import; this order is the order of list_metrics().
from ticketlab.metrics import overlap, units, sparsity, signs, graph, relational  # noqa: E402,F401  isort:skip
from ticketlab.metrics.chance import null_stats  # noqa: E402
from ticketlab.metrics.compare import comparison_warnings, compare, prepare, result_records, ticket_label  # noqa: E402
from ticketlab.metrics.degree import DegreeNull, null_tickets  # noqa: E402
from ticketlab.metrics.graph import analyze, effective_mask, layer_graph_stats, log10_paths  # noqa: E402
from ticketlab.metrics.many import PairwiseMatrix, pairwise_matrix, plot_heatmap  # noqa: E402
from ticketlab.metrics.relational import relational_graphs, relational_measures  # noqa: E402
from ticketlab.metrics.schema import COMPARE_SCHEMA, validate_records  # noqa: E402
from ticketlab.metrics.sparsity import plot_profiles  # noqa: E402

__all__ = [
    "COMPARE_SCHEMA", "GROUPS", "MEAN", "TOTAL", "WMEAN", "Cache", "Counts", "DegreeNull", "Metric", "PairwiseMatrix",
    "analyze", "compare", "comparison_warnings", "default_metrics", "effective_mask", "get_metric", "layer_graph_stats",
    "list_groups", "list_metrics", "load_plugins", "log10_paths", "null_stats", "null_tickets", "pair_counts", "pairwise_matrix",
    "plot_heatmap", "plot_profiles", "prepare", "register", "relational_graphs", "relational_measures",
    "resolve_metrics", "result_records", "ticket_label", "unregister", "validate_records",
]
