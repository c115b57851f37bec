"""Ticket transforms: the sanity checks of Frankle et al. 2021 ("Pruning Neural Networks at
Initialization: Why are We Missing the Mark?") and Su et al. 2020, as pure numpy functions.

Each transform maps a :class:`~ticketlab.ticket.Ticket` to a new one and never modifies its
input. It takes an explicit ``seed`` (a ``numpy.random.default_rng(seed)`` drives every draw, so
the same seed gives the same ticket) and appends ``{"name", "seed", ...}`` to the new ticket's
``provenance["transforms"]``. No torch import: ``ticketlab compare`` can use them.

* ``shuffle_layerwise``: a uniformly random permutation of each layer's mask (exact per-layer
  counts: only the layer-wise densities survive).
* ``shuffle_global``: one uniformly random permutation over all prunable weights (exact total).
* ``invert``: the *lowest*-ranked weights by the stored scores, at the same count as the
  ticket's scope (per layer or in all), through the shared selection
  (:func:`ticketlab.selection.select_bottom`): by rank order, never by ``1/score``; equal
  scores in an order drawn from the transform's seed.
* ``reinit``: the same mask with a fresh draw of the initial weights (see :func:`reinit`).

What the new ticket keeps: the provenance (mask counts updated, the source's
``test_accuracy`` moved into the transform's record), the ``init`` weights (dropped by
``reinit``) and, where the mask still follows them (``invert``, ``reinit``), the scores. The
``final`` weights and the history belong to the source's training of the source's mask and are
dropped: a transformed ticket is untrained.

Example:
    >>> import numpy as np
    >>> t = Ticket(masks={"w": np.array([True, True, False, False, False])}, provenance={"scope": "layer"})
    >>> s = shuffle_layerwise(t, seed=0)
    >>> int(s.masks["w"].sum()), s.provenance["transforms"]
    (2, [{'name': 'shuffle_layerwise', 'seed': 0}])
    >>> list_transforms()
    ['shuffle_layerwise', 'shuffle_global', 'invert', 'reinit']
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import numpy as np

from ticketlab.checks import check_seed
from ticketlab.errors import ConfigError
from ticketlab.registry import Registry
from ticketlab.selection import SCOPES, select_bottom
from ticketlab.ticket import Ticket

#: A transform: ``fn(ticket, *, seed) -> Ticket``.
Transform = Callable[..., Ticket]

TRANSFORMS: Registry[Transform] = Registry("transform")


def register_transform(name: str) -> Callable[[Transform], Transform]:
    """Decorator: register a transform ``fn(ticket, *, seed) -> Ticket`` under ``name``."""
    return TRANSFORMS.register(name)


def get_transform(name: str) -> Transform:
    """The transform registered as ``name`` (an unknown name is a one-line error listing the choices).

    Example:
        >>> get_transform("invert").__name__
        'invert'
    """
    return TRANSFORMS.get(name)


def list_transforms(pattern: str = "*") -> list[str]:
    """Names of the registered transforms matching a shell-style ``pattern``.

    Example:
        >>> list_transforms("shuffle_*")
        ['shuffle_layerwise', 'shuffle_global']
    """
    return TRANSFORMS.list(pattern)


def _check_seed(seed: Any) -> int:
    return check_seed(seed, "a transform's seed")


def recorded_transforms(provenance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The provenance's ``transforms`` records, checked: a list of tables, each with a ``name``, and
    a seed (:func:`ticketlab.checks.check_seed`) in every ``reinit`` record. A provenance that breaks
    this (a damaged or hand-made file) is a one-sentence :class:`~ticketlab.errors.ConfigError`.

    Example:
        >>> recorded_transforms({"transforms": [{"name": "reinit", "seed": 5, "weights": "reinit"}]})[0]["seed"]
        5
        >>> recorded_transforms({"transforms": "reinit"})
        Traceback (most recent call last):
        ...
        ticketlab.errors.ConfigError: the ticket's provenance transforms must be a list of records, not a str
    """
    records = provenance.get("transforms", [])
    if not isinstance(records, list):
        raise ConfigError(f"the ticket's provenance transforms must be a list of records, not a {type(records).__name__}")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            raise ConfigError(f"the ticket's provenance transform {i} is not a record with a name")
        if r["name"] == "reinit":
            check_seed(r.get("seed"), f"the ticket's provenance transform {i} (reinit): its seed")
    return records


def _derived(ticket: Ticket, masks: dict[str, np.ndarray], record: dict[str, Any], *,
             init: bool = True, scores: bool = False) -> Ticket:
    """The new ticket: fresh copies of everything kept, the counts of ``masks``, ``record`` appended."""
    prov = copy.deepcopy(ticket.provenance)
    if "test_accuracy" in prov:  # a result of the source's mask, not of this one
        record = {**record, "source_test_accuracy": prov.pop("test_accuracy")}
    prov["transforms"] = [*recorded_transforms(prov), record]
    kept = {n: int(np.count_nonzero(m)) for n, m in masks.items()}
    total = int(sum(m.size for m in masks.values()))
    for key, value in (("kept", sum(kept.values())), ("layer_kept", kept),
                       ("achieved_density", sum(kept.values()) / total if total else 0.0),
                       ("collapsed", any(k == 0 for k in kept.values()))):
        if key in prov or key == "layer_kept":
            prov[key] = value
    weights = {"init": {n: np.array(w, copy=True) for n, w in ticket.weights["init"].items()}} \
        if init and "init" in ticket.weights else {}
    return Ticket(masks=masks, provenance=prov, weights=weights,
                  scores={n: np.array(s, copy=True) for n, s in ticket.scores.items()} if scores else {})


# Synaptic-Flow's layer-wise shuffle (Tanaka et al. 2020's code) is a no-op: it assigns the
# permuted mask to a local name and never writes it back into the mask tensor. Here the
# permuted arrays *are* the new ticket's masks, and the tests check that they moved.
@register_transform("shuffle_layerwise")
def shuffle_layerwise(ticket: Ticket, *, seed: int) -> Ticket:
    """Permute each layer's mask uniformly at random (Frankle et al. 2021's layer-wise random
    shuffling ablation): the same number of weights kept in every layer, at random positions.

    The layers are permuted in order with one ``numpy.random.default_rng(seed)``.

    Example:
        >>> t = Ticket(masks={"a": np.eye(3, dtype=bool), "b": np.array([True, False])})
        >>> s = shuffle_layerwise(t, seed=1)
        >>> s.layer_kept() == t.layer_kept(), s.provenance["transforms"][-1]["seed"]
        (True, 1)
    """
    rng = np.random.default_rng(_check_seed(seed))
    masks = {n: rng.permutation(m.ravel()).reshape(m.shape) for n, m in ticket.masks.items()}
    return _derived(ticket, masks, {"name": "shuffle_layerwise", "seed": int(seed)})


@register_transform("shuffle_global")
def shuffle_global(ticket: Ticket, *, seed: int) -> Ticket:
    """One uniformly random permutation over all prunable weights: the same total kept, the
    layer-wise densities no longer the method's.

    Example:
        >>> t = Ticket(masks={"a": np.eye(3, dtype=bool), "b": np.array([True, False])})
        >>> shuffle_global(t, seed=0).kept
        4
    """
    rng = np.random.default_rng(_check_seed(seed))
    flat = rng.permutation(np.concatenate([m.ravel() for m in ticket.masks.values()]))
    masks, offset = {}, 0
    for n, m in ticket.masks.items():
        masks[n] = flat[offset: offset + m.size].reshape(m.shape)
        offset += m.size
    return _derived(ticket, masks, {"name": "shuffle_global", "seed": int(seed)})


@register_transform("invert")
def invert(ticket: Ticket, *, seed: int | None = None, scope: str | None = None) -> Ticket:
    """Keep the lowest-ranked weights by the ticket's stored scores, at the same count
    (Frankle et al. 2021's inversion ablation: prune the most important weights instead).

    The count is the ticket's kept count per layer (``scope="layer"``) or in all
    (``"global"``); ``scope`` defaults to the provenance's. The ranking is the shared
    selection's (:func:`ticketlab.selection.select_bottom`): NaN and -inf rank lowest of all (so
    they are kept first), and equal scores are ordered by a random permutation drawn from
    ``numpy.random.default_rng(seed)`` (seed 0 when not given), so that no layer or row wins the
    ties by its position (SynFlow's many zero scores, for one). Ranking by order rather than
    keeping the top of ``1/score`` matters for signed scores such as GraSP's, where ``1/score``
    would put small negative scores first.

    Example:
        >>> t = Ticket(masks={"w": np.array([True, True, False, False])}, provenance={"scope": "global"},
        ...            scores={"w": np.array([3.0, -5.0, 0.5, -1.0])})
        >>> invert(t).masks["w"].tolist()   # ranks 3, 0.5, -1, -5: keep the last two
        [False, True, False, True]
    """
    if seed is not None:
        _check_seed(seed)
    missing = [n for n in ticket.masks if n not in ticket.scores]
    if missing:
        raise ConfigError(f"invert needs the ticket's scores, and it has none for '{missing[0]}' "
                          "(mine it again without --no-scores)")
    scope = scope if scope is not None else ticket.provenance.get("scope")
    if scope not in SCOPES:
        raise ConfigError("invert needs the ticket's selection scope (global or layer): its provenance "
                          f"has {scope!r}; pass scope explicitly")
    counts: int | dict[str, int] = ticket.kept if scope == "global" else ticket.layer_kept()
    rng = np.random.default_rng(seed if seed is not None else 0)
    masks = select_bottom({n: ticket.scores[n] for n in ticket.masks}, counts, rng=rng)
    return _derived(ticket, masks, {"name": "invert", "seed": seed, "scope": scope, "ties": "seeded"}, scores=True)


@register_transform("reinit")
def reinit(ticket: Ticket, *, seed: int) -> Ticket:
    """The same mask with a fresh draw of the initial weights (Frankle et al. 2021's
    reinitialization ablation).

    numpy cannot draw a torch model's initialization, so the transform does not draw: it drops
    the stored ``init`` weights and records ``{"name": "reinit", "seed": seed, "weights": "reinit"}``.
    Whoever builds the network (ticket training) materializes the draw with the shared
    weight-treatment helpers, not a copy of them: the model built with seed
    :func:`reinit_model_seed` (``ticketlab.weights.reinit_draw_seed(seed)``) gives ``fresh`` to
    ``ticketlab.weights.kept_weights("reinit", w0, mask, fresh=...)`` — the draw that
    ``--weights reinit`` makes for a run with that seed. A later ``reinit`` replaces an earlier one.

    Example:
        >>> t = Ticket(masks={"w": np.array([True, False])}, weights={"init": {"w": np.array([0.1, 0.2])}})
        >>> r = reinit(t, seed=5)
        >>> r.weights, r.provenance["transforms"]
        ({}, [{'name': 'reinit', 'seed': 5, 'weights': 'reinit'}])
    """
    masks = {n: m.copy() for n, m in ticket.masks.items()}
    record = {"name": "reinit", "seed": _check_seed(seed), "weights": "reinit"}
    return _derived(ticket, masks, record, init=False, scores=True)


def reinit_model_seed(ticket: Ticket) -> int | None:
    """The model seed whose initialization the ticket's weights are to be drawn from, when a
    ``reinit`` transform was applied (the last one counts); ``None`` otherwise (use the stored
    ``init`` weights, or the provenance seed). Imports torch (through :mod:`ticketlab.weights`).

    Example:
        >>> t = Ticket(masks={"w": np.array([True, False])})
        >>> reinit_model_seed(t) is None, reinit_model_seed(reinit(t, seed=0)) == reinit_model_seed(reinit(t, seed=0))
        (True, True)
    """
    records = [r for r in recorded_transforms(ticket.provenance) if r["name"] == "reinit"]
    if not records:
        return None
    from ticketlab.weights import reinit_draw_seed

    return reinit_draw_seed(int(records[-1]["seed"]))
