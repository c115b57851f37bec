"""The :class:`Ticket`: masks plus provenance, as plain numpy data (no torch import).

A *mask* is an ordered mapping from a parameter name, exactly as ``model.named_parameters()``
spells it, to a boolean numpy array of that parameter's shape (True = kept). A ticket may also
carry weight snapshots (``"init"``, ``"final"``), per-parameter scores and a history table (one
row per round or step). Everything is validated once, when the ticket is made.

Example:
    >>> import numpy as np
    >>> t = Ticket(masks={"fc.weight": np.array([[True, False], [False, False]])})
    >>> t.density
    0.25
    >>> t.layer_density()
    {'fc.weight': 0.25}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ticketlab.errors import ConfigError

if TYPE_CHECKING:  # torch is imported only by the interop methods, when they are called
    from torch import nn

#: Names of weight snapshots a ticket may carry.
SNAPSHOTS = ("init", "final")


def _as_mask(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != np.bool_:
        if arr.dtype.kind in "iu" and arr.size and not np.isin(arr, (0, 1)).all():
            raise ConfigError(f"mask '{name}' must be boolean; it holds values other than 0 and 1")
        if arr.dtype.kind not in "biu":
            raise ConfigError(f"mask '{name}' must be boolean, not {arr.dtype}")
        arr = arr.astype(np.bool_)
    if arr.ndim == 0:
        raise ConfigError(f"mask '{name}' must be an array, not a scalar")
    return arr


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


def _json_normalised(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Provenance as it will read back from a file: JSON types only (tuples become lists)."""
    try:
        return json.loads(json.dumps(dict(provenance), default=_json_default, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"provenance must be JSON-serialisable; it holds a {exc}") from None


@dataclass
class Ticket:
    """A sparse subnetwork: boolean masks per parameter, with provenance and optional extras.

    Attributes:
        masks: parameter name -> boolean array (True = weight kept), in ``named_parameters()``
            order.
        provenance: JSON-serialisable facts about how the ticket was found (method and its
            config, model, dataset, seed, densities, versions, time, ...).
        weights: snapshot name (``"init"`` or ``"final"``) -> parameter name -> float array.
        scores: parameter name -> float array of the miner's last scores.
        history: rows (dicts of scalars) of per-round or per-step records.
    """

    masks: dict[str, np.ndarray]
    provenance: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.masks, Mapping) or not self.masks:
            raise ConfigError("a ticket needs at least one mask (parameter name -> boolean array)")
        self.masks = {str(k): _as_mask(str(k), v) for k, v in self.masks.items()}
        self.provenance = _json_normalised(self.provenance)
        for snap, params in self.weights.items():
            if snap not in SNAPSHOTS:
                raise ConfigError(f"unknown weight snapshot '{snap}' (choose from: {', '.join(SNAPSHOTS)})")
            self.weights[snap] = self._check_arrays(f"weights/{snap}", params)
        self.scores = self._check_arrays("scores", self.scores)
        self.history = [dict(row) for row in self.history]

    def _check_arrays(self, where: str, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, value in arrays.items():
            arr = np.asarray(value)
            if name in self.masks and arr.shape != self.masks[name].shape:
                raise ConfigError(
                    f"{where}: '{name}' has shape {arr.shape} but its mask has shape "
                    f"{self.masks[name].shape}"
                )
            out[str(name)] = arr
        missing = [n for n in self.masks if n not in out]
        if out and missing and where.startswith("weights"):
            raise ConfigError(f"{where}: no weights for masked parameter '{missing[0]}'")
        return out

    # ------------------------------------------------------------------ counts and densities
    @property
    def names(self) -> list[str]:
        """Masked parameter names, in order."""
        return list(self.masks)

    @property
    def total(self) -> int:
        """Number of maskable weights."""
        return int(sum(m.size for m in self.masks.values()))

    @property
    def kept(self) -> int:
        """Number of weights kept (True in the masks)."""
        return int(sum(np.count_nonzero(m) for m in self.masks.values()))

    @property
    def density(self) -> float:
        """Fraction of maskable weights kept."""
        return self.kept / self.total if self.total else 0.0

    @property
    def sparsity(self) -> float:
        """Fraction of maskable weights removed (1 - density)."""
        return 1.0 - self.density

    def layer_kept(self) -> dict[str, int]:
        """Kept count per parameter."""
        return {n: int(np.count_nonzero(m)) for n, m in self.masks.items()}

    def layer_density(self) -> dict[str, float]:
        """Density per parameter."""
        return {n: (float(np.count_nonzero(m) / m.size) if m.size else 0.0) for n, m in self.masks.items()}

    @property
    def collapsed(self) -> bool:
        """True when some masked parameter keeps no weight at all (layer collapse)."""
        return any(not m.any() for m in self.masks.values())

    # ------------------------------------------------------------------ torch.nn.utils.prune
    def apply_to(self, model: nn.Module, *, weights: str | None = None) -> nn.Module:
        """Prune ``model`` in place with these masks (``torch.nn.utils.prune.custom_from_mask``).

        Each masked parameter ``NAME`` becomes the standard ``NAME_orig`` / ``NAME_mask`` pair;
        ``weights="init"`` or ``"final"`` first copies that snapshot in. See
        :func:`ticketlab.interop.modules.apply_to`.

        Example:
            >>> import torch
            >>> lin = torch.nn.Linear(2, 1, bias=False)
            >>> Ticket(masks={"weight": np.array([[False, True]])}).apply_to(lin).weight_mask.tolist()
            [[0.0, 1.0]]
        """
        from ticketlab.interop.modules import apply_to

        return apply_to(self, model, weights=weights)

    @classmethod
    def from_module(cls, model: nn.Module, *, zeros_as_pruned: bool = False) -> Ticket:
        """The ticket of a model pruned with ``torch.nn.utils.prune`` (its ``*_mask`` buffers), or
        with ``zeros_as_pruned`` of the zeros in its prunable weights. See
        :func:`ticketlab.interop.modules.from_module`.

        Example:
            >>> import torch
            >>> lin = Ticket(masks={"weight": np.array([[False, True]])}).apply_to(torch.nn.Linear(2, 1))
            >>> Ticket.from_module(lin).masks["weight"].tolist()
            [[False, True]]
        """
        from ticketlab.interop.modules import from_module

        return from_module(model, zeros_as_pruned=zeros_as_pruned)

    # ------------------------------------------------------------------ graphs
    def to_networkx(self, effective_only: bool = False, undirected: bool = False,
                    max_edges: int | None = None) -> Any:
        """The unit-level network as a ``networkx.DiGraph`` (networkx is imported here, not before).

        Node ``i`` is unit ``i`` of :func:`ticketlab.network.unit_graph` (rows of its adjacency),
        with attributes ``tensor``, ``unit`` (index in the tensor) and ``depth``; an edge carries
        ``multiplicity`` (kept weights between the two units: a conv kernel is one edge) and
        ``parameter`` (its weight's name; ``None`` for a residual shortcut). ``effective_only``
        keeps the units on some input-to-output path; ``undirected`` gives an undirected view.
        More than ``max_edges`` edges (default ``TICKETLAB_LIMIT_GRAPH_EDGES``, 2,000,000) is a
        one-line :class:`ticketlab.limits.LimitError`.

        Example:
            >>> g = Ticket(masks={"fc1": np.array([[1, 1], [0, 1]], bool)}).to_networkx()
            >>> sorted(g.edges(data="multiplicity")), g.nodes[2]
            ([(0, 2, 1), (1, 2, 1), (1, 3, 1)], {'tensor': 't1', 'unit': 0, 'depth': 1})
        """
        from ticketlab.network import to_networkx

        return to_networkx(self, effective_only=effective_only, undirected=undirected, max_edges=max_edges)

    def __repr__(self) -> str:
        method = self.provenance.get("method", "?")
        extras = [k for k, v in (("weights", self.weights), ("scores", self.scores), ("history", self.history)) if v]
        return (
            f"Ticket(method={method!r}, params={len(self.masks)}, total={self.total}, "
            f"density={self.density:.4g}{', ' + '+'.join(extras) if extras else ''})"
        )
