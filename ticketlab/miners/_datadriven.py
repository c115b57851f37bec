"""Shared by the data-driven pruning-at-initialization miners (``snip``, ``grasp``).

* :func:`sample_batches`: a class-balanced sample of the training split (Lee et al. 2019 and
  Wang et al. 2020 both score on ``samples_per_class`` examples of every class; GraSP's
  reference code draws 10 per class), drawn once from the miner's seeded generator. For a graph
  the sample is a set of *training nodes*; the model still sees the whole graph.
* :class:`DataDrivenMiner`: keeps a private copy of the model in the scoring dtype with batch
  norm in the chosen mode (dropout always off), writes ``θ0 * mask`` (its initial weights) into it each round and
  yields the loss of each batch in memory-bounded chunks (:meth:`DataDrivenMiner.loss_terms`).
  The user's model is never modified, so train-mode batch norm cannot touch its running
  statistics.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import torch
from torch import nn

from ticketlab.errors import ConfigError
from ticketlab.miners.base import Miner, MinerConfig, MiningContext, check_choices

if TYPE_CHECKING:
    from ticketlab.data.base import DataSpec, Dataset

_DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: Samples per forward pass. A batch larger than this is processed in chunks whose summed
#: losses equal the batch's mean loss exactly (train-mode batch norm then uses per-chunk stats).
CHUNK = 256


@dataclass
class ScoringBatch:
    """One batch: ``model(*inputs)``; the loss is the mean cross-entropy of ``outputs[index]``
    (``index is None``: every output row) against ``targets``."""

    inputs: tuple[torch.Tensor, ...]
    targets: torch.Tensor
    index: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.targets.numel())


def balanced_indices(labels: torch.Tensor, num_classes: int, per_class: int, batches: int,
                     generator: torch.Generator) -> list[torch.Tensor]:
    """Draw ``per_class`` positions of every class per batch, without replacement.

    ``per_class=0`` takes every sample. A class with fewer than ``per_class * batches`` samples
    contributes all it has, spread evenly over the batches. Classes are drawn in label order,
    each with its own permutation from ``generator``.

    Example:
        >>> y = torch.tensor([0, 1, 0, 1, 0, 1])
        >>> [b.tolist() for b in balanced_indices(y, 2, 1, 2, torch.Generator().manual_seed(0))]
        [[4, 5], [0, 3]]
    """
    parts: list[tuple[torch.Tensor, ...]] = []
    for c in range(num_classes):
        pos = torch.nonzero(labels == c, as_tuple=False).flatten()
        if pos.numel() == 0:
            continue
        pos = pos[torch.randperm(pos.numel(), generator=generator)]
        if per_class > 0:
            pos = pos[: per_class * batches]
        parts.append(torch.tensor_split(pos, batches))
    if not parts:
        raise ConfigError("the training split holds no labelled samples to score on")
    return [torch.cat([p[b] for p in parts]) for b in range(batches)]


def sample_batches(data: "Dataset | None", spec: "DataSpec", per_class: int, batches: int,
                   generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> list[ScoringBatch]:
    """Class-balanced scoring batches from the training split of ``data`` (see module docstring).

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> spec = DataSpec("toy", "tensor", (2,), 2)
        >>> x, y = torch.arange(12.0).view(6, 2), torch.tensor([0, 1, 0, 1, 0, 1])
        >>> data = TensorData(spec, (x, y), (x[:0], y[:0]), (x[:0], y[:0]))
        >>> b = sample_batches(data, spec, 2, 1, torch.Generator().manual_seed(0), torch.device("cpu"),
        ...                    torch.float64)
        >>> b[0].targets.tolist(), b[0].inputs[0].dtype
        ([0, 0, 1, 1], torch.float64)
    """
    if data is None:
        raise ConfigError("this method scores on training data, but no data set was given")
    if spec.kind == "graph":
        g = data.graph
        train_nodes = torch.nonzero(g.train_mask, as_tuple=False).flatten()
        idx = balanced_indices(g.y[train_nodes], spec.num_classes, per_class, batches, generator)
        inputs = (g.x.to(device=device, dtype=dtype), g.edge_index.to(device))
        return [ScoringBatch(inputs, g.y[train_nodes[i]].to(device), train_nodes[i].to(device)) for i in idx]
    x, y = data.train
    idx = balanced_indices(y, spec.num_classes, per_class, batches, generator)
    return [ScoringBatch((x[i].to(device=device, dtype=dtype),), y[i].to(device)) for i in idx]


def take_grad(p: torch.Tensor) -> torch.Tensor:
    """``p.grad``, which ``p`` then lets go of, so a score may be written over it in place; zeros
    when the loss does not depend on ``p``."""
    g, p.grad = p.grad, None
    return g if g is not None else torch.zeros_like(p)


@dataclass(frozen=True)
class DataDrivenConfig(MinerConfig):
    """Options shared by the data-driven miners."""

    samples_per_class: int = field(default=10, metadata={"help": "training samples (graph: training nodes) per class in each scoring batch; 0 = all"})
    batches: int = field(default=1, metadata={"help": "number of class-balanced scoring batches; their losses are summed"})
    batchnorm: str = field(default="eval", metadata={
        "help": "batch-norm mode while scoring: eval (reference code) or train", "choices": ("eval", "train")})
    precision: str = field(default="float32", metadata={
        "help": "dtype of the scoring pass: float32 or float64", "choices": tuple(_DTYPES)})

    def __post_init__(self) -> None:
        if isinstance(self.samples_per_class, bool) or not isinstance(self.samples_per_class, int) or self.samples_per_class < 0:
            raise ConfigError(f"samples_per_class must be a non-negative integer, got {self.samples_per_class!r}")
        if isinstance(self.batches, bool) or not isinstance(self.batches, int) or self.batches < 1:
            raise ConfigError(f"batches must be a positive integer, got {self.batches!r}")
        check_choices(self)  # batchnorm, precision


class DataDrivenMiner(Miner):
    """Base of miners that score with gradients of the training loss at the current weights."""

    needs_data = True
    Config = DataDrivenConfig
    config: DataDrivenConfig

    def prepare(self, ctx: MiningContext) -> None:
        dtype = _DTYPES[self.config.precision]
        net = copy.deepcopy(ctx.model).to(dtype)
        net.eval()  # dropout off: scores must not depend on global RNG state
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train(self.config.batchnorm == "train")
        named = dict(net.named_parameters())
        for p in net.parameters():
            p.requires_grad_(False)
        self._net = net
        self._params = {n: named[n].requires_grad_(True) for n in ctx.params}
        self._init_weights = {n: p.detach().clone() for n, p in self._params.items()}
        self._batches = sample_batches(ctx.data, ctx.spec, self.config.samples_per_class, self.config.batches,
                                       ctx.generator, ctx.device, dtype)

    def set_weights(self, masks: dict[str, torch.Tensor]) -> None:
        """Write ``theta0 * mask`` into the scoring copy and clear its gradients."""
        with torch.no_grad():
            for n, p in self._params.items():
                torch.mul(self._init_weights[n], masks[n], out=p.data)
                p.grad = None

    def single_term(self) -> bool:
        """Whether :meth:`loss_terms` yields one term only (one batch that fits in one chunk)."""
        return len(self._batches) == 1 and (self._batches[0].index is not None or self._batches[0].size <= CHUNK)

    def loss_terms(self, temperature: float = 1.0) -> Iterator[torch.Tensor]:
        """Loss terms (graph built) whose sum is ``sum over batches of mean CE(f(x) / T, y)``."""
        for batch in self._batches:
            if batch.index is not None:  # graph: one pass over the whole graph
                out = self._net(*batch.inputs)[batch.index]
                yield nn.functional.cross_entropy(out / temperature, batch.targets)
                continue
            (x,) = batch.inputs
            for start in range(0, batch.size, CHUNK):
                out = self._net(x[start : start + CHUNK])
                loss = nn.functional.cross_entropy(out / temperature, batch.targets[start : start + CHUNK],
                                                   reduction="sum")
                yield loss / batch.size

    def finish(self, ctx: MiningContext) -> None:
        self._net = self._params = self._init_weights = self._batches = None  # type: ignore[assignment]
