"""The thresholds, seeds and marks that the report's claims follow (each one is stated on the page)."""

from __future__ import annotations

#: A method pair "shares more than chance" when its mean Jaccard lift is at least this and every
#: seed pair's one-sided p is below :data:`ALPHA`; "less than chance" below ``1 / LIFT_THRESHOLD``.
LIFT_THRESHOLD = 1.1
#: Significance level of the claims (hypergeometric and permutation p-values).
ALPHA = 0.01
#: A within- minus across-method difference of mean lift at least this large is never called small.
EFFECT = round(LIFT_THRESHOLD - 1.0, 12)
#: Permutations of the within- vs across-method test, and the seed of their generator.
N_PERMUTATIONS = 10_000
PERMUTATION_SEED = 0
#: Resamples (and seed) of the bootstrap interval of the within - across difference; its level.
N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
#: Seed of the random baseline masks of the graph tables (``shuffle_layerwise`` of each method's first ticket).
BASELINE_SEED = 0
#: Metric registry groups whose single-ticket metrics the graph section shows (a group that is not
#: registered, or has no single-ticket metric, adds nothing).
GRAPH_GROUPS = ("graph", "relational")
#: How every spread of the report is taken.
SPREAD = "min-max"
#: Appended to the name of a method with an unhealthy ticket (and to such a ticket's label).
MARK = " †"
