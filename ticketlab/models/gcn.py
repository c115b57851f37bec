"""A graph convolutional network for node classification (Kipf & Welling 2017 layers).

Layout: dropout -> GCNConv -> leaky ReLU -> dropout -> GCNConv -> leaky ReLU -> dropout ->
linear (logits). Defaults: ``hidden=64`` channels for both GCN layers, ``dropout=0.5`` (Kipf &
Welling's rate; their 2-layer GCN used 16 hidden units, we use 64 because a third, linear layer
reads the second GCN layer's output). Called as ``model(x, edge_index)``.

The prunable weight of a ``GCNConv`` is its internal ``lin.weight`` (shape ``(out, in)``).
torch_geometric is imported when a GCN is built, not when ``ticketlab.models`` is imported.

Each GCN layer computes what ``GCNConv.forward`` computes, ``A_hat (h W^T) + b`` with
``A_hat = D^-1/2 (A + I) D^-1/2`` (Kipf & Welling 2017, Eq. 2; PyG's ``gcn_norm``), but not
the way it does on the CPU, where that costs ~120 ms a training step on Cora (2708 x 1433
features, 1.3% non-zero) and this ~10 ms:

* ``A_hat`` is computed once per ``edge_index`` tensor and reused while that tensor is alive
  and unchanged (its identity and in-place version are the key). ``GCNConv(cached=True)``
  would cache it keyed on nothing, wrong as soon as the model sees another graph.
* On the CPU, ``A_hat`` is a sparse (CSR) matrix and ``A_hat h`` a sparse product, instead of
  PyG's gather / scatter-add over the edges.
* Sparse node features (at most :data:`SPARSE_INPUT_DENSITY` non-zero) on the CPU are kept in
  CSR form, built once per ``x`` tensor, and ``x W^T`` is a sparse product. The input dropout
  then draws one Bernoulli variable per non-zero entry instead of one per entry: a zero stays
  zero whatever is drawn, so ``dropout(x)`` has the same distribution (Kipf & Welling's
  reference code does the same, ``sparse_dropout`` in ``gcn/layers.py``). On Cora that is one
  draw in 79: the dense dropout alone took ~90 ms a step.

Both sparse products keep the transpose's CSR too, so their backward passes are sparse
products as well (torch's own backward of ``torch.sparse.mm`` re-sorts the matrix every step).
Dense features, features that need a gradient and CUDA tensors take PyG's path (``F.dropout``,
``F.linear``, ``propagate``), whose results are those of ``GCNConv`` bit for bit. The sparse
path draws other random numbers, and sums in another order, so its trained weights differ from
the dense path's for the same seed; each path is deterministic for a seed.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any, Callable

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.errors import ConfigError
from ticketlab.models.registry import register_model

#: Node features with at most this fraction of non-zero entries take the sparse first layer.
SPARSE_INPUT_DENSITY = 0.1


def _sparse_products(device: torch.device) -> bool:
    """Whether this model takes its sparse path (sparse products, uniform-draw dropout) on ``device``."""
    return device.type == "cpu"


def _dropout(h: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with the kept entries where a uniform draw ``U[0, 1) >= p``: the distribution of
    ``F.dropout``, drawn ~3x faster on the CPU than by torch's Bernoulli sampler."""
    if not training or p == 0:
        return h
    return h * torch.rand_like(h).ge_(p).mul_(1.0 / (1.0 - p))


class _SparseMatrix:
    """A fixed sparsity pattern ``S`` in CSR form with its values, and the CSR form of ``S^T``
    (the same entries ordered by column: ``values[perm]``)."""

    def __init__(self, csr: torch.Tensor) -> None:
        self.shape = tuple(csr.shape)
        self.crow, self.col, self.values = csr.crow_indices(), csr.col_indices(), csr.values()
        n, m = self.shape
        rows = torch.repeat_interleave(torch.arange(n, device=self.crow.device), self.crow.diff())
        self.perm = torch.argsort(self.col * n + rows, stable=True)
        self.crow_t = torch.zeros(m + 1, dtype=self.crow.dtype, device=self.crow.device)
        self.crow_t[1:] = torch.cumsum(torch.bincount(self.col, minlength=m), 0)
        self.col_t = rows[self.perm].to(self.col.dtype)

    @classmethod
    def from_dense(cls, x: torch.Tensor) -> "_SparseMatrix":
        """The non-zero entries of the matrix ``x``."""
        with warnings.catch_warnings():  # torch warns (once) that CSR support is "in beta"
            warnings.simplefilter("ignore", UserWarning)
            return cls(x.to_sparse_csr())

    @classmethod
    def from_coo(cls, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
                 shape: tuple[int, int]) -> "_SparseMatrix":
        """The matrix with ``values`` at ``(rows, cols)``; repeated positions are summed."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, shape).coalesce()
            return cls(coo.to_sparse_csr())

    def mm(self, dense: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """``S' @ dense``, ``S'`` being ``S`` with its stored entries replaced by ``values``."""
        return _SparseMM.apply(self.values if values is None else values, dense, self)


class _SparseMM(torch.autograd.Function):
    """``S @ D`` with ``dL/dD = S^T @ dL/dout`` from the stored transpose. The backward is
    itself differentiable in ``dL/dout`` (GraSP's Hessian-gradient product goes through it)."""

    @staticmethod
    def forward(ctx: Any, values: torch.Tensor, dense: torch.Tensor, s: _SparseMatrix) -> torch.Tensor:
        ctx.s = s
        ctx.save_for_backward(values)
        return torch.sparse.mm(_csr(s.crow, s.col, values, s.shape), dense)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        (values,) = ctx.saved_tensors
        s = ctx.s
        s_t = _csr(s.crow_t, s.col_t, values[s.perm], (s.shape[1], s.shape[0]))
        return None, torch.sparse.mm(s_t, grad), None


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    # indices made by _SparseMatrix, valid by construction: no per-step invariant check
    return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class _Memo:
    """A value derived from one tensor, valid while that tensor is alive and unchanged."""

    def __init__(self) -> None:
        self._ref: Any = None
        self._key: tuple = ()
        self.value: Any = None

    def get(self, t: torch.Tensor, *key: Any) -> Any:
        if self._ref is not None and self._ref() is t and self._key == (t._version, *key):
            return self.value
        return None

    def put(self, t: torch.Tensor, value: Any, *key: Any) -> Any:
        self._ref, self._key, self.value = weakref.ref(t), (t._version, *key), value
        return value


class GCN(nn.Module):
    """Two GCNConv layers (``conv1``, ``conv2``) with leaky ReLU, then a linear layer ``fc``."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        with warnings.catch_warnings():  # lazy: importing PyG costs seconds; hide its
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation noise
            from torch_geometric.nn import GCNConv

        self.conv1 = GCNConv(in_features, hidden)
        self.conv2 = GCNConv(hidden, hidden)
        self.fc = nn.Linear(hidden, num_classes)
        self.dropout = dropout
        self._memos()

    def _memos(self) -> None:
        self._adj, self._feats = _Memo(), _Memo()

    def __getstate__(self) -> dict[str, Any]:  # copies and pickles start without the memos
        return {k: v for k, v in self.__dict__.items() if k not in ("_adj", "_feats")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._memos()

    def _adjacency(self, edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype) -> Any:
        """``A_hat`` of ``edge_index``: a :class:`_SparseMatrix`, or PyG's ``(edge_index,
        edge_weight)`` where products are not sparse (as ``GCNConv.forward`` computes them)."""
        from torch_geometric.nn.conv.gcn_conv import gcn_norm

        c = self.conv1  # conv2 is built with the same improved / add_self_loops / flow
        key = (num_nodes, dtype, edge_index.device, c.improved, c.add_self_loops, c.flow)
        found = self._adj.get(edge_index, *key)
        if found is None:
            ei, ew = gcn_norm(edge_index, None, num_nodes, c.improved, c.add_self_loops, c.flow, dtype)
            found = (ei, ew)
            if _sparse_products(edge_index.device):  # out[target] += w * h[source]
                src, dst = (ei[0], ei[1]) if c.flow == "source_to_target" else (ei[1], ei[0])
                found = _SparseMatrix.from_coo(dst, src, ew, (num_nodes, num_nodes))
            self._adj.put(edge_index, found, *key)
        return found

    def _sparse_features(self, x: torch.Tensor) -> _SparseMatrix | None:
        """``x`` in sparse form when it is sparse enough, needs no gradient and products are sparse."""
        if not _sparse_products(x.device) or x.dim() != 2 or x.layout != torch.strided or x.requires_grad:
            return None
        found = self._feats.get(x, x.dtype)
        if found is None:
            sparse = int(torch.count_nonzero(x)) <= SPARSE_INPUT_DENSITY * x.numel()
            found = self._feats.put(x, (_SparseMatrix.from_dense(x) if sparse else None,), x.dtype)
        return found[0]

    def _first_product(self, x: torch.Tensor, drop: Callable[..., torch.Tensor]) -> torch.Tensor:
        """``drop(x) @ conv1.lin.weight^T``."""
        w = self.conv1.lin.weight
        feats = self._sparse_features(x)
        if feats is None:
            return nn.functional.linear(drop(x, self.dropout, self.training), w)
        return feats.mm(w.t(), drop(feats.values, self.dropout, self.training))  # non-zero entries only

    @staticmethod
    def _aggregate(conv: nn.Module, h: torch.Tensor, adj: Any) -> torch.Tensor:
        """The rest of ``GCNConv.forward`` after its linear map: ``A_hat h + b``."""
        out = adj.mm(h) if isinstance(adj, _SparseMatrix) else conv.propagate(adj[0], x=h, edge_weight=adj[1])
        return out if conv.bias is None else out + conv.bias

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        drop = _dropout if _sparse_products(x.device) else nn.functional.dropout
        adj = self._adjacency(edge_index, x.size(-2), x.dtype)
        h = nn.functional.leaky_relu(self._aggregate(self.conv1, self._first_product(x, drop), adj))
        h = drop(h, self.dropout, self.training)
        h = nn.functional.leaky_relu(self._aggregate(self.conv2, self.conv2.lin(h), adj))
        h = drop(h, self.dropout, self.training)
        return self.fc(h)


@register_model("gcn", kind="graph")
def gcn(spec: DataSpec, hidden: int = 64, dropout: float = 0.5) -> nn.Module:
    """GCN: 2 GCNConv layers with leaky ReLU + 1 linear layer (hidden 64, dropout 0.5)."""
    if hidden < 1 or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"gcn needs hidden >= 1 and 0 <= dropout < 1, got {hidden} and {dropout}")
    return GCN(spec.input_shape[0], int(hidden), spec.num_classes, float(dropout))
