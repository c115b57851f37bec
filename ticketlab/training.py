"""The one training loop every miner uses: dense or masked, tensor or graph data.

* :class:`TrainConfig` holds the hyper-parameters (frozen dataclass, validated, help text in
  each field's metadata); :func:`default_train_config` gives sensible ones per model / data set
  (Frankle & Carbin 2019, "The Lottery Ticket Hypothesis", Figure 2 / Appendix, for LeNet and
  Conv-2/4/6; open_lth conventions for VGG / ResNet; Kipf & Welling 2017 for GCN).
* :func:`fit` runs it on a model (``ticketlab.train`` trains a *ticket*, :mod:`ticketlab.retraining`):
  deterministic for a seed, minibatches by index slicing of in-memory tensors (tensor data) or
  full-batch steps with the loss on ``train_mask`` nodes (graph data), and a
  :class:`~ticketlab.masking.MaskedOptimizer` that keeps pruned weights exactly zero.
* :func:`evaluate_model` gives ``(loss, accuracy)`` of one split (``ticketlab.evaluate`` evaluates a
  *ticket*, :mod:`ticketlab.evaluation`).

``fit`` and ``evaluate_model`` were called ``train`` and ``evaluate`` before issue 24; the old names
still work, with a :class:`DeprecationWarning` (``docs/glossary.md``).

Iteration ``t`` (0-based) is the optimizer step that turns the weights "after ``t``
iterations" into the weights "after ``t + 1`` iterations"; its learning rate is
:func:`lr_at` ``(config, t, total)``. One epoch of graph data is one iteration.

Evaluation (validation and test loss and accuracy, one log row) runs every ``eval_every``
iterations and after the last one; by default once per epoch, but every
:data:`GRAPH_EVAL_EVERY` iterations on graph data, where an epoch is a single step and a
full-graph evaluation costs a third of one (:func:`eval_cadence` resolves it, and the mining
provenance records the resolved value). Early stopping picks among the evaluated iterations.
The validation split is scored at every evaluation; the test split, by default
(``test_eval="stops"``), only where the validation loss reaches a new minimum and at the end,
which gives the early-stop and final test accuracies exactly (the other rows' ``test_accuracy``
is NaN); ``test_eval="every"`` scores it every time (Frankle & Carbin's test curves).

Randomness (STYLE 6): the batch order of epoch ``e`` comes from a ``torch.Generator`` seeded
with a value derived from ``(seed, e)`` only, so a run restarted at ``start_iteration`` sees the
same batches as the uninterrupted run. Dropout and other in-model randomness draw from torch's
global RNG; :func:`fit` seeds it from ``seed`` inside a ``torch.random.fork_rng`` scope, so
the caller's global RNG state is the same after the call as before. (A restarted run gets the
same data order but different dropout draws than the uninterrupted one.)

Example:
    >>> import torch
    >>> from ticketlab.data.base import DataSpec, TensorData
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(40, 2, generator=g); y = (x[:, 0] > 0).long()
    >>> data = TensorData(DataSpec("toy", "tensor", (2,), 2), (x, y), (x, y), (x, y))
    >>> model = torch.nn.Linear(2, 2)
    >>> res = fit(model, data, TrainConfig(optimizer="sgd", lr=0.5, epochs=20, batch_size=10), device="cpu")
    >>> res.final_test_accuracy > 0.9
    True
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ticketlab.data.base import GraphData, TensorData
from ticketlab.device import resolve_device
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.masking import MaskedOptimizer, check_masks
from ticketlab.progress import NullProgress
from ticketlab.streams import BATCH_ORDER, DROPOUT, RECALIBRATION, seed63

OPTIMIZERS = ("sgd", "adam", "adagrad")
SCHEDULES = ("constant", "cosine", "cosine_epoch", "step")
#: When an evaluation scores the test split too (``TrainConfig.test_eval``).
TEST_EVAL = ("stops", "every")
SPLITS = ("train", "val", "test")


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (validated on creation; see ``field.metadata["help"]``).

    Example:
        >>> TrainConfig(optimizer="adam", lr=1.2e-3, epochs=2).optimizer
        'adam'
        >>> TrainConfig(lr=-1)
        Traceback (most recent call last):
        ...
        ticketlab.errors.ConfigError: training option lr must be > 0, not -1
    """

    optimizer: str = _help("optimizer: sgd, adam or adagrad", "sgd")
    lr: float = _help("peak learning rate", 0.1)
    momentum: float = _help("momentum of sgd (0 = none); only for optimizer sgd", 0.0)
    nesterov: bool = _help("use Nesterov momentum (sgd with momentum > 0 only)", False)
    weight_decay: float = _help("L2 weight decay added to the gradient by the optimizer", 0.0)
    schedule: str = _help("learning-rate schedule: constant, cosine (to 0 at the last iteration), cosine_epoch "
                          "(cosine stepped once per epoch, as Gem-Miner's and edge-popup's reference codes) or step",
                          "constant")
    milestones: tuple[int, ...] = _help("iterations after which schedule step multiplies the rate by gamma", ())
    gamma: float = _help("factor applied to the rate at each milestone of schedule step", 0.1)
    warmup_iterations: int = _help("linear warm-up: iteration t uses lr * (t + 1) / warmup for t < warmup", 0)
    epochs: int = _help("passes over the training split (ignored when iterations is set)", 1)
    iterations: int | None = _help("total optimizer steps; overrides epochs (graph data: 1 step = 1 epoch)", None)
    batch_size: int = _help("minibatch size (ignored for graph data, which trains full-batch)", 60)
    eval_every: int | None = _help(
        "evaluate every this many iterations and at the end (default: once per epoch; graph data, where an "
        "epoch is one iteration: every 10)", None)
    eval_batch_size: int = _help("batch size of evaluation passes", 1000)
    test_eval: str = _help(
        "when an evaluation also scores the test split: stops (only where the validation loss reaches a new "
        "minimum, and at the end: every test accuracy that early stopping and the final result report, exactly, "
        "at a fraction of the cost; other rows get NaN) or every (each evaluation, for whole test curves)", "stops")
    drop_last: bool = _help("drop each epoch's last, smaller minibatch", False)

    def __post_init__(self) -> None:
        try:
            milestones = tuple(self.milestones)
        except TypeError:
            msg = f"training option milestones must be a list of iterations, not {self.milestones!r}"
            raise ConfigError(msg) from None
        if not all(isinstance(m, (int, np.integer)) and not isinstance(m, bool) for m in milestones):
            raise ConfigError(f"training option milestones must be integer iterations, not {list(milestones)}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in milestones))
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{self.optimizer}' (choose from: {', '.join(OPTIMIZERS)})")
        if self.test_eval not in TEST_EVAL:
            raise ConfigError(f"training option test_eval must be one of {', '.join(TEST_EVAL)}, not {self.test_eval!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule '{self.schedule}' (choose from: {', '.join(SCHEDULES)})")
        for f in fields(self):  # inf and nan pass the range checks below (nan compares False)
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"training option {f.name} must be a finite number, not {value}")
        _positive("lr", self.lr)
        _positive("gamma", self.gamma)
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum < 1:
            raise ConfigError(f"training option momentum must be in [0, 1), not {self.momentum}")
        if self.momentum > 0 and self.optimizer != "sgd":
            raise ConfigError(f"training option momentum applies only to optimizer sgd, not {self.optimizer}")
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise ConfigError("training option nesterov needs optimizer sgd with momentum > 0")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ConfigError(f"training option weight_decay must be >= 0, not {self.weight_decay}")
        if self.schedule == "cosine_epoch" and self.iterations is not None:
            raise ConfigError("training option schedule cosine_epoch steps once per epoch: give epochs, not iterations")
        if self.milestones and self.schedule != "step":
            raise ConfigError(f"training option milestones applies only to schedule step, not {self.schedule}")
        if any(m <= 0 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise ConfigError(
                f"training option milestones must be strictly increasing positive iterations, not {list(self.milestones)}"
            )
        for name in ("epochs", "batch_size", "eval_batch_size"):
            _positive(name, getattr(self, name), integer=True)
        for name in ("iterations", "eval_every"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name), integer=True)
        if not isinstance(self.warmup_iterations, int) or self.warmup_iterations < 0:
            raise ConfigError(
                f"training option warmup_iterations must be an integer >= 0, not {self.warmup_iterations!r}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """A config from a mapping (e.g. read back from JSON); unknown keys are an error.

        Example:
            >>> TrainConfig.from_dict({"lr": 0.01, "milestones": [5], "schedule": "step"}).milestones
            (5,)
        """
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"unknown training option '{key}' (choose from: {', '.join(sorted(known))})")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable values of every field (milestones as a list)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["milestones"] = list(self.milestones)
        return out


def _positive(name: str, value: Any, integer: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else isinstance(value, (int, float))
    if not ok or not value > 0:
        kind = "a positive integer" if integer else "> 0"
        raise ConfigError(f"training option {name} must be {kind}, not {value!r}")


def lr_at(config: TrainConfig, iteration: int, total_iterations: int) -> float:
    """Learning rate of step ``iteration`` (0-based) of a run of ``total_iterations`` steps.

    ``lr * warmup(t) * schedule(t)`` with ``warmup(t) = min(1, (t + 1) / W)`` and
    ``schedule(t)`` = 1 (constant), ``(1 + cos(pi * t / T)) / 2`` (cosine, Loshchilov & Hutter
    2017, SGDR eq. 5 without restarts, eta_min = 0), ``(1 + cos(pi * e / E)) / 2`` with ``e`` the
    0-based epoch of step ``t`` and ``E`` the epochs (cosine_epoch: the reference codes' per-epoch
    step, allenai/hidden-networks ``utils/schedulers.py`` ``cosine_lr`` and Gem-Miner's
    ``CosineAnnealingLR(T_max=epochs)`` stepped after each epoch) or
    ``gamma ** #{m in milestones: m <= t}`` (step).

    Example:
        >>> cfg = TrainConfig(lr=1.0, schedule="cosine")
        >>> lr_at(cfg, 5, 10)
        0.5
        >>> per_epoch = TrainConfig(lr=1.0, schedule="cosine_epoch", epochs=2)  # 5 steps an epoch
        >>> [lr_at(per_epoch, t, 10) for t in (0, 4, 5, 9)]
        [1.0, 1.0, 0.5, 0.5]
    """
    t = iteration
    factor = 1.0
    if config.warmup_iterations and t < config.warmup_iterations:
        factor = (t + 1) / config.warmup_iterations
    if config.schedule == "cosine":
        factor *= 0.5 * (1.0 + math.cos(math.pi * t / max(total_iterations, 1)))
    elif config.schedule == "cosine_epoch":
        epoch = t * config.epochs // max(total_iterations, 1)  # total is epochs * steps per epoch
        factor *= 0.5 * (1.0 + math.cos(math.pi * epoch / config.epochs))
    elif config.schedule == "step":
        factor *= config.gamma ** bisect.bisect_right(config.milestones, t)
    return config.lr * factor


# Frankle & Carbin (2019), Figure 2: LeNet-300-100 Adam 1.2e-3 batch 60 50K iterations;
# Conv-2/4/6 Adam 2e-4/3e-4/3e-4 batch 60, 20K/25K/30K iterations; VGG-19 SGD 0.1 momentum 0.9
# batch 64, 112,480 iterations, x0.1 at epochs 80 and 120, 10K warm-up; ResNet-18 (their CIFAR
# ResNet-20) SGD 0.1 momentum 0.9 batch 128, 30K iterations, x0.1 at 20K and 25K, 20K warm-up.
_SMALL_DATASETS = {"digits": 20, "mnist1d": 20, "mnist5k": 20}  # data set -> epochs, so demos run in seconds
_GRAPH_DATASETS = ("cora", "citeseer", "pubmed")


def default_train_config(model_name: str, dataset_name: str) -> TrainConfig:
    """Sensible hyper-parameters for ``model_name`` on ``dataset_name``.

    Paper settings on the full data sets (MNIST, CIFAR-10); a few epochs on the small ones
    (``digits``, ``mnist1d``, ``mnist5k``) so that a demo runs in seconds.

    Example:
        >>> cfg = default_train_config("lenet_300_100", "mnist")
        >>> cfg.optimizer, cfg.lr, cfg.batch_size, cfg.iterations
        ('adam', 0.0012, 60, 50000)
    """
    m, d = model_name.lower(), dataset_name.lower()
    small_epochs = _SMALL_DATASETS.get(d)
    if m.startswith(("gcn", "gat", "sage", "gin")) or d in _GRAPH_DATASETS:
        return TrainConfig(optimizer="adam", lr=0.01, weight_decay=5e-4, iterations=200)
    if m.startswith("lenet") or m == "mlp_200_30":
        if small_epochs:
            return TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, epochs=small_epochs)
        return TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, iterations=50_000, eval_every=100)
    if m in ("conv2", "conv4", "conv6"):
        lr = 2e-4 if m == "conv2" else 3e-4
        if small_epochs:
            return TrainConfig(optimizer="adam", lr=lr, batch_size=60, epochs=small_epochs)
        its = {"conv2": 20_000, "conv4": 25_000, "conv6": 30_000}[m]
        return TrainConfig(optimizer="adam", lr=lr, batch_size=60, iterations=its, eval_every=100)
    if m.startswith(("vgg", "resnet")):
        vgg = m.startswith("vgg")
        wd = 5e-4 if vgg else 1e-4
        if small_epochs:
            return TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=wd, batch_size=64,
                               epochs=small_epochs, schedule="cosine")
        if vgg:
            return TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=wd, batch_size=64,
                               iterations=112_480, schedule="step", milestones=(56_240, 84_360),
                               warmup_iterations=10_000, eval_every=703)
        return TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=wd, batch_size=128,
                           iterations=30_000, schedule="step", milestones=(20_000, 25_000),
                           warmup_iterations=20_000, eval_every=352)
    if m.startswith("simple_cnn"):
        return TrainConfig(optimizer="adagrad", lr=0.05, batch_size=100, epochs=small_epochs or 20)
    return TrainConfig(optimizer="adam", lr=1e-3, batch_size=60, epochs=small_epochs or 10)


def _fused_supported(optimizer: str, params: Sequence[torch.Tensor]) -> bool:
    """Whether torch has a fused (single-kernel) step for ``optimizer`` on these parameters.

    Fused steps are 2-4x faster on CPU, and they avoid a slow path that the unfused Adam and
    Adagrad hit on some CPUs (``sqrt`` of exact zeros, i.e. of pruned entries' state; measured
    ~9x slower per element on AMD EPYC / AVX2 with torch 2.14).
    """
    devices = {p.device.type for p in params}
    if len(devices) != 1 or not all(p.dtype in (torch.float32, torch.float64) for p in params):
        return False
    device = devices.pop()
    return device == "cpu" or (device == "cuda" and optimizer in ("sgd", "adam"))


def make_optimizer(
    model: nn.Module, config: TrainConfig, masks: Mapping[str, torch.Tensor] | None = None, *,
    trainable: Mapping[str, nn.Parameter] | None = None,
) -> torch.optim.Optimizer | MaskedOptimizer:
    """The optimizer of ``config`` over ``trainable`` (default: ``model``'s parameters that
    require a gradient), masked when ``masks`` are given.

    Uses torch's fused implementation where one exists for the parameters' device and dtype.

    Example:
        >>> opt = make_optimizer(torch.nn.Linear(2, 2), TrainConfig(optimizer="adagrad", lr=0.1))
        >>> type(opt).__name__
        'Adagrad'
    """
    named = dict(model.named_parameters())
    if trainable is None:
        params = [p for p in named.values() if p.requires_grad]
    else:
        ids = {id(p) for p in named.values()}
        for name, p in trainable.items():
            if id(p) not in ids:
                raise IncompatibleError(f"trainable parameter '{name}' is not a parameter of the model")
        params = list(trainable.values())
    if not params:
        raise ConfigError("nothing to train: the model has no parameter that requires a gradient")
    if config.optimizer == "sgd":
        cls: type[torch.optim.Optimizer] = torch.optim.SGD
        kwargs: dict[str, Any] = dict(momentum=config.momentum, nesterov=config.nesterov)
    elif config.optimizer == "adam":
        cls, kwargs = torch.optim.Adam, {}
    else:
        cls, kwargs = torch.optim.Adagrad, {}
    kwargs.update(lr=config.lr, weight_decay=config.weight_decay)
    opt = None
    if _fused_supported(config.optimizer, params):
        try:
            opt = cls(params, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):  # a dtype or device the fused kernel lacks
            opt = None
    if opt is None:
        opt = cls(params, **kwargs)
    if masks is None:
        return opt
    return MaskedOptimizer(opt, named, masks)


@dataclass
class StepInfo:
    """What a callback sees after each optimizer step (weights already masked)."""

    iteration: int  # iterations completed, counting from 0 (so 1 after the first step)
    loss: torch.Tensor  # minibatch loss of this step (a 0-d tensor; .item() syncs a GPU)
    lr: float
    model: nn.Module
    optimizer: Any  # torch.optim.Optimizer or MaskedOptimizer
    stop: bool = False  # a callback sets this to end training after this step (e.g. Early-Bird)


@dataclass
class TrainResult:
    """Outcome of :func:`fit`.

    ``log`` has one row per evaluation: ``iteration``, ``lr``, ``train_loss`` (mean minibatch
    loss since the previous evaluation), ``val_loss``, ``val_accuracy``, ``test_accuracy``. The
    early-stopping iteration is the logged iteration of minimum validation loss (first on ties),
    as in Frankle & Carbin (2019), Section 2: a multiple of the evaluation cadence
    (:func:`eval_cadence`) or the last iteration.
    """

    final_test_accuracy: float
    final_val_accuracy: float
    final_val_loss: float
    best_val_accuracy: float
    early_stop_iteration: int
    early_stop_val_loss: float
    early_stop_test_accuracy: float
    iterations: int  # steps run by this call
    final_iteration: int  # absolute iteration at the end (start_iteration + iterations)
    wall_time_s: float
    log: list[dict[str, float]] = field(default_factory=list)
    snapshot: dict[str, torch.Tensor] | None = None  # state_dict copy (CPU) after snapshot_at iterations
    early_stop_state: dict[str, torch.Tensor] | None = None  # state_dict (CPU) at early_stop_iteration

    def summary(self) -> dict[str, float]:
        """The scalar results (everything but ``log`` and ``snapshot``), e.g. for provenance.

        Example:
            >>> r = TrainResult(0.9, 0.8, 0.5, 0.85, 100, 0.4, 0.88, 200, 200, 1.5)
            >>> r.summary()["early_stop_iteration"]
            100
        """
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("log", "snapshot", "early_stop_state")}


def steps_per_epoch(config: TrainConfig, data: TensorData | GraphData) -> int:
    """Optimizer steps in one epoch: ``ceil(n / batch)`` (``floor`` with ``drop_last``); 1 on a graph."""
    if isinstance(data, GraphData):
        return 1
    n = len(data.train[1])
    bs = min(config.batch_size, n)
    return n // bs if config.drop_last else -(-n // bs)


def total_iterations(config: TrainConfig, data: TensorData | GraphData) -> int:
    """Optimizer steps of one :func:`fit` run: ``iterations`` if set, else ``epochs`` epochs.

    Example:
        >>> from ticketlab.data import load_dataset
        >>> total_iterations(TrainConfig(epochs=2, batch_size=60), load_dataset("digits"))  # 1079 training digits: 18 batches
        36
    """
    if config.iterations is not None:
        return int(config.iterations)
    return int(config.epochs * steps_per_epoch(config, data))


#: Default evaluation cadence on graph data (iterations). One step is a whole epoch there, and
#: evaluating after each of the default 200 steps made evaluation a quarter of the training time;
#: every 10 steps keeps 20 rows and puts the early-stopping point within 10 steps of the best.
GRAPH_EVAL_EVERY = 10


def eval_cadence(config: TrainConfig, data: TensorData | GraphData) -> int:
    """Iterations between evaluations in :func:`fit`: ``config.eval_every`` when set, else one
    epoch on tensor data and :data:`GRAPH_EVAL_EVERY` on graph data (an evaluation also follows
    the last iteration).

    Example:
        >>> from ticketlab.data import load_dataset
        >>> karate = load_dataset("karate")
        >>> eval_cadence(TrainConfig(), karate), eval_cadence(TrainConfig(eval_every=1), karate)
        (10, 1)
    """
    if config.eval_every is not None:
        return int(config.eval_every)
    return GRAPH_EVAL_EVERY if isinstance(data, GraphData) else steps_per_epoch(config, data)


def resolved_config(config: TrainConfig, data: TensorData | GraphData) -> TrainConfig:
    """``config`` with ``eval_every`` set to the cadence :func:`fit` uses on ``data``: what a
    ticket's provenance records, so that reading it back trains the same way.

    Example:
        >>> from ticketlab.data import load_dataset
        >>> resolved_config(TrainConfig(), load_dataset("karate")).eval_every
        10
    """
    return dataclasses.replace(config, eval_every=eval_cadence(config, data))


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _split_tensors(data: TensorData, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}' (choose from: {', '.join(SPLITS)})")
    return getattr(data, split)


@torch.no_grad()
def _evaluate_splits(
    model: nn.Module, data: TensorData | GraphData, splits: Sequence[str], batch_size: int = 1000
) -> dict[str, tuple[float, float]]:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: dict[str, tuple[float, float]] = {}
    try:
        if isinstance(data, GraphData):
            g = data.graph
            logits = model(g.x.to(device), g.edge_index.to(device))
            y = g.y.to(device)
            for split in splits:
                if split not in SPLITS:
                    raise ConfigError(f"unknown split '{split}' (choose from: {', '.join(SPLITS)})")
                mask = getattr(g, f"{split}_mask").to(device)
                n = int(mask.sum())
                if n == 0:
                    out[split] = (math.nan, math.nan)
                    continue
                lg, yy = logits[mask], y[mask]
                out[split] = (F.cross_entropy(lg, yy).item(), (lg.argmax(1) == yy).float().mean().item())
            return out
        for split in splits:
            x, y = _split_tensors(data, split)
            n = len(y)
            if n == 0:
                out[split] = (math.nan, math.nan)
                continue
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            for i in range(0, n, batch_size):
                xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
                logits = model(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
                correct += (logits.argmax(1) == yb).sum()
            out[split] = (loss_sum.item() / n, correct.item() / n)
        return out
    finally:
        model.train(was_training)


def evaluate_model(
    model: nn.Module, data: TensorData | GraphData, split: str, *, batch_size: int = 1000
) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``split`` ("train", "val" or "test").

    Runs in eval mode under ``no_grad`` on the model's device, in batches of ``batch_size``
    (graph data: one full forward pass); the model's train/eval mode is restored. An empty split
    gives ``(nan, nan)``.

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> x = torch.eye(2); y = torch.tensor([0, 1])
        >>> data = TensorData(DataSpec("toy", "tensor", (2,), 2), (x, y), (x, y), (x, y))
        >>> lin = torch.nn.Linear(2, 2, bias=False); _ = lin.weight.data.copy_(torch.eye(2))
        >>> evaluate_model(lin, data, "test")[1]
        1.0
    """
    return _evaluate_splits(model, data, [split], batch_size)[split]


@torch.no_grad()
def evaluate_masked(
    model: nn.Module, data: TensorData | GraphData, masks: Mapping[str, torch.Tensor], batch_size: int = 1000,
    splits: Sequence[str] = ("val", "test"),
) -> dict[str, tuple[float, float]]:
    """``(loss, accuracy)`` per split of ``model`` with the masked weights set to zero, untrained.

    The weights are multiplied by ``masks`` for the evaluation and restored afterwards, so the
    model is left exactly as it was (batch-norm statistics included: evaluation mode).

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> x = torch.eye(2); y = torch.tensor([0, 1])
        >>> data = TensorData(DataSpec("toy", "tensor", (2,), 2), (x, y), (x, y), (x, y))
        >>> lin = torch.nn.Linear(2, 2, bias=False); _ = lin.weight.data.copy_(torch.eye(2))
        >>> evaluate_masked(lin, data, {"weight": torch.tensor([[True, False], [False, False]])})["test"][1]
        0.5
    """
    params = dict(model.named_parameters())
    check_masks(masks, params)
    saved = {n: params[n].detach().clone() for n in masks}
    try:
        for n, m in masks.items():
            params[n].mul_(m.to(device=params[n].device, dtype=params[n].dtype))
        return _evaluate_splits(model, data, splits, batch_size)
    finally:
        for n, w in saved.items():
            params[n].copy_(w)


#: Training batches used to re-estimate batch-norm statistics before an untrained evaluation.
RECALIBRATION_BATCHES = 10


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, data: TensorData | GraphData, *, batches: int = RECALIBRATION_BATCHES,
    batch_size: int = 128, seed: int = 0,
) -> int:
    """Re-estimate the running statistics of every batch-norm layer on training batches.

    The statistics are reset and re-accumulated as an exact average (``momentum=None``) over
    ``batches`` minibatches of ``batch_size`` training samples drawn without replacement by a
    generator seeded with ``seed`` (graph data: one full-graph pass). Only the running mean,
    variance and batch counter change; weights, the model's mode and the global RNG do not.
    Returns the number of batch-norm layers (0: nothing to do, no forward pass run).

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> x = torch.randn(64, 3) * 5 + 2; y = torch.zeros(64, dtype=torch.long)
        >>> data = TensorData(DataSpec("toy", "tensor", (3,), 2), (x, y), (x, y), (x, y))
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
        >>> recalibrate_batchnorm(net, data, batches=2, batch_size=32)
        1
        >>> bool(net[1].running_var.sum() > 0) and net[1].momentum == 0.1 and net.training
        True
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    device = next(model.parameters()).device
    was_training = model.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over the batches
    try:
        model.eval()
        for m in bns:
            m.train()  # only batch norm in train mode: dropout stays off
        with torch.random.fork_rng(devices=[]):
            if isinstance(data, GraphData):
                g = data.graph
                model(g.x.to(device), g.edge_index.to(device))
            else:
                x, _ = data.train
                gen = torch.Generator().manual_seed(seed63(seed, RECALIBRATION))
                order = torch.randperm(len(x), generator=gen)
                for b in range(batches):
                    idx = order[b * batch_size : (b + 1) * batch_size]
                    if len(idx) == 0:
                        break
                    model(x[idx].to(device))
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.train(was_training)
    return len(bns)


def evaluate_untrained(
    model: nn.Module, data: TensorData | GraphData, masks: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor], *, state: Mapping[str, torch.Tensor] | None = None,
    recalibrate: int = RECALIBRATION_BATCHES, seed: int = 0, splits: Sequence[str] = ("val", "test"),
    batch_size: int = 1000,
) -> dict[str, tuple[float, float]]:
    """``(loss, accuracy)`` per split of the *untrained* masked network ``weights ⊙ masks``.

    ``state`` (e.g. the initial ``state_dict``) is loaded first, so biases and batch norm are
    those of the untrained network; then the masked ``weights`` are written into the masked
    parameters, batch-norm statistics are recalibrated on ``recalibrate`` seeded training
    batches (:func:`recalibrate_batchnorm`; stale statistics make an untrained masked network
    meaningless), and the splits are evaluated. The model keeps these weights afterwards.

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> x = torch.eye(2); y = torch.tensor([0, 1])
        >>> data = TensorData(DataSpec("toy", "tensor", (2,), 2), (x, y), (x, y), (x, y))
        >>> lin = torch.nn.Linear(2, 2, bias=False)
        >>> ev = evaluate_untrained(lin, data, {"weight": torch.ones(2, 2, dtype=torch.bool)},
        ...                         {"weight": torch.eye(2)})
        >>> ev["test"][1]
        1.0
    """
    if state is not None:
        model.load_state_dict(dict(state))
    params = dict(model.named_parameters())
    check_masks(masks, params)
    with torch.no_grad():
        for n, m in masks.items():
            p = params[n]
            p.copy_(weights[n].to(device=p.device, dtype=p.dtype) * m.to(device=p.device, dtype=p.dtype))
    if recalibrate:
        recalibrate_batchnorm(model, data, batches=recalibrate, seed=seed)
    return _evaluate_splits(model, data, splits, batch_size)


def train_summary(result: TrainResult) -> dict[str, Any]:
    """The scalar facts of a :class:`TrainResult` for a history row (shared by every miner).

    Example:
        >>> r = TrainResult(0.9, 0.8, 0.5, 0.85, 100, 0.4, 0.88, 200, 200, 1.5)
        >>> train_summary(r)["early_stop_iteration"], train_summary(r)["iterations"]
        (100, 200)
    """
    return {
        "test_accuracy": result.final_test_accuracy,
        "val_accuracy": result.final_val_accuracy,
        "best_val_accuracy": result.best_val_accuracy,
        "early_stop_iteration": result.early_stop_iteration,
        "early_stop_test_accuracy": result.early_stop_test_accuracy,
        "iterations": result.final_iteration,
        "train_seconds": result.wall_time_s,
    }


def _on_device(data: TensorData | GraphData, dev: torch.device) -> TensorData | GraphData:
    """``data`` with its tensors on ``dev`` (moved once; a no-op copy on CPU)."""
    if isinstance(data, GraphData):
        return GraphData(data.spec, copy.copy(data.graph).to(dev))  # PyG's .to works in place
    if not isinstance(data, TensorData):
        raise IncompatibleError(f"train needs TensorData or GraphData, not {type(data).__name__}")
    return TensorData(data.spec, *(tuple(t.to(dev) for t in split) for split in (data.train, data.val, data.test)))


class _Batches:
    """The minibatch of every iteration: epoch ``e``'s order is a permutation drawn from a
    generator seeded with ``(seed, 1, e)`` only (so a restarted run sees the same batches);
    graph data gives the whole graph with the loss on ``train_mask`` nodes."""

    def __init__(self, data: TensorData | GraphData, config: TrainConfig, seed: int) -> None:
        self.seed = seed
        self.graph = isinstance(data, GraphData)
        if self.graph:
            g = data.graph
            self.x, self.edge_index = g.x, g.edge_index
            self.train_idx = torch.nonzero(g.train_mask).flatten()  # once: a boolean index syncs a GPU
            self.y = g.y[self.train_idx]
            if len(self.y) == 0:
                raise IncompatibleError(f"graph data set '{data.spec.name}' has no nodes in train_mask")
        else:
            self.x, self.y = data.train
            if len(self.y) == 0:
                raise IncompatibleError(f"data set '{data.spec.name}' has an empty training split")
            self.bs = min(config.batch_size, len(self.y))
        self.per_epoch = steps_per_epoch(config, data)
        self._epoch, self._perm = -1, torch.empty(0)

    def logits_and_targets(self, model: nn.Module, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's logits on iteration ``t``'s minibatch, and the batch's labels."""
        if self.graph:
            return model(self.x, self.edge_index)[self.train_idx], self.y
        epoch, b = divmod(t, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(seed63(self.seed, BATCH_ORDER, epoch))
            self._epoch, self._perm = epoch, torch.randperm(len(self.y), generator=gen).to(self.x.device)
        idx = self._perm[b * self.bs : (b + 1) * self.bs]
        return model(self.x[idx]), self.y[idx]


class _Log:
    """Evaluation rows: mean training loss since the last row, validation and test metrics, and
    the caller's extra columns (``log_extra``)."""

    def __init__(self, model: nn.Module, data: TensorData | GraphData, config: TrainConfig,
                 log_extra: Callable[[], Mapping[str, float]] | None, keep_early_stop: bool = False) -> None:
        self.model, self.data, self.config, self.log_extra = model, data, config, log_extra
        self.rows: list[dict[str, float]] = []
        self.keep_early_stop = keep_early_stop
        self.best_state: dict[str, torch.Tensor] | None = None
        self._best_loss = math.inf
        self._stop_loss = math.inf  # the lowest validation loss so far (test_eval="stops")
        self._loss_sum: torch.Tensor | float = 0.0
        self._n = 0

    def add_loss(self, loss: torch.Tensor) -> None:
        self._loss_sum = self._loss_sum + loss  # stays on the device: no sync per step
        self._n += 1

    def record(self, iteration: int, lr: float, *, last: bool = False) -> None:
        """One row. With ``test_eval="stops"`` (tensor data) the test split is scored only where the
        validation loss is a new minimum (strictly lower: the first on ties, as :func:`_result`
        picks the early stop) and at the ``last`` row, so the early-stop and final test accuracies
        are exactly those of ``"every"``; graph data scores every split in one forward pass anyway."""
        every = self.config.test_eval == "every" or isinstance(self.data, GraphData)
        ev = _evaluate_splits(self.model, self.data, ("val", "test") if every else ("val",), self.config.eval_batch_size)
        new_best = not math.isnan(ev["val"][0]) and ev["val"][0] < self._stop_loss
        if new_best:
            self._stop_loss = ev["val"][0]
        if "test" not in ev:
            ev["test"] = (_evaluate_splits(self.model, self.data, ("test",), self.config.eval_batch_size)["test"]
                          if new_best or last else (math.nan, math.nan))
        train_loss = float(self._loss_sum) / self._n if self._n else math.nan
        row = {"iteration": iteration, "lr": lr, "train_loss": train_loss, "val_loss": ev["val"][0],
               "val_accuracy": ev["val"][1], "test_accuracy": ev["test"][1]}
        if self.log_extra is not None:
            row.update(self.log_extra())
        self.rows.append(row)
        # the early-stopping point: minimum validation loss, first on ties (as _result picks it)
        if self.keep_early_stop and (self.best_state is None or row["val_loss"] < self._best_loss):
            self._best_loss = row["val_loss"] if not math.isnan(row["val_loss"]) else self._best_loss
            self.best_state = state_copy(self.model)
        self._loss_sum, self._n = 0.0, 0


def _result(log: list[dict[str, float]], start_iteration: int, total: int, wall: float,
            snapshot: dict[str, torch.Tensor] | None,
            early_stop_state: dict[str, torch.Tensor] | None = None) -> TrainResult:
    """The :class:`TrainResult` of a finished run: early stopping = minimum validation loss."""
    val_losses = np.array([row["val_loss"] for row in log], dtype=float)
    best = int(np.nanargmin(val_losses)) if not np.all(np.isnan(val_losses)) else len(log) - 1
    last = log[-1]
    val_accs = [row["val_accuracy"] for row in log if not math.isnan(row["val_accuracy"])]
    return TrainResult(
        final_test_accuracy=last["test_accuracy"],
        final_val_accuracy=last["val_accuracy"],
        final_val_loss=last["val_loss"],
        best_val_accuracy=max(val_accs) if val_accs else math.nan,
        early_stop_iteration=int(log[best]["iteration"]),
        early_stop_val_loss=log[best]["val_loss"],
        early_stop_test_accuracy=log[best]["test_accuracy"],
        iterations=total - start_iteration,
        final_iteration=total,
        wall_time_s=wall,
        log=log,
        snapshot=snapshot,
        early_stop_state=early_stop_state,
    )


def fit(
    model: nn.Module,
    data: TensorData | GraphData,
    config: TrainConfig,
    *,
    masks: Mapping[str, torch.Tensor] | None = None,
    trainable: Mapping[str, nn.Parameter] | None = None,
    regularizer: Callable[[], torch.Tensor] | None = None,
    log_extra: Callable[[], Mapping[str, float]] | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: NullProgress = NullProgress(),
    start_iteration: int = 0,
    snapshot_at: int | None = None,
    keep_early_stop: bool = False,
    callbacks: Sequence[Callable[[StepInfo], None]] = (),
    label: str = "train",
) -> TrainResult:
    """Train ``model`` in place on ``data`` with ``config``; masked entries stay exactly zero.

    The same loop trains weights under a mask (every miner, ``--train-ticket``) and the scores
    of the learned-mask miners (:mod:`ticketlab.miners._learned`): what it trains is
    ``trainable``, and everything else in the model is left as it is by the optimizer.

    Args:
        masks: parameter name -> boolean tensor (True = kept); the masked entries are zeroed
            before the first step and stay zero (see :class:`~ticketlab.masking.MaskedOptimizer`).
        trainable: the parameters the optimizer updates (name -> parameter of ``model``); default
            every parameter of ``model`` with ``requires_grad``.
        regularizer: a function whose (differentiable) value is added to every step's loss,
            e.g. Gem-Miner's ``lambda * sum(s ** 2)``; the logged ``train_loss`` includes it.
        log_extra: a function whose columns are added to every evaluation row of the log.
        seed: non-negative; same seed, data, config and initial weights give bit-identical
            weights on CPU (see the module docstring for what is seeded).
        device: "auto", "cpu" or "cuda"; the model is moved there and left there.
        start_iteration: run steps ``start_iteration .. total - 1`` (to resume a schedule, e.g.
            after rewinding to iteration K); the lr schedule and batch order are those of the
            full run.
        snapshot_at: also return a CPU copy of ``model.state_dict()`` after this many (absolute)
            iterations in ``TrainResult.snapshot`` (``start_iteration`` <= it <= total).
        keep_early_stop: also return a CPU copy of ``model.state_dict()`` at the early-stopping
            evaluation (minimum validation loss, first on ties) in ``TrainResult.early_stop_state``:
            the weights a retraining to ``early_stop_iteration`` would give, without retraining.
        callbacks: called with a :class:`StepInfo` after every step (before that step's
            evaluation, so a callback that changes the model is seen by the log). A callback
            that sets ``info.stop = True`` ends the run after that step: it is evaluated and the
            result reports it as the last iteration. :class:`ticketlab.tracking.MaskTracker` does
            so for Early-Bird (You et al. 2020): it tracks the magnitude mask every ``EVERY``
            iterations and stops once the last 5 Hamming distances between consecutive tracked
            masks are all ``<= EPS * 2d(1 - d)`` (``EPS`` relative to the chance distance).
        label: the progress bar's description.

    Example:
        >>> from ticketlab.data.base import DataSpec, TensorData
        >>> x = torch.randn(30, 4); y = (x.sum(1) > 0).long()
        >>> data = TensorData(DataSpec("toy", "tensor", (4,), 2), (x, y), (x, y), (x, y))
        >>> res = fit(torch.nn.Linear(4, 2), data, TrainConfig(epochs=2, batch_size=10), device="cpu")
        >>> res.iterations, [row["iteration"] for row in res.log]
        (6, [3, 6])
    """
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"training seed must be a non-negative integer, not {seed!r}")
    dev = resolve_device(device)
    data = _on_device(data, dev)
    batches = _Batches(data, config, seed)
    total = total_iterations(config, data)
    eval_every = eval_cadence(config, data)
    if not isinstance(start_iteration, int) or not 0 <= start_iteration <= total:
        raise ConfigError(f"start_iteration must be in [0, {total}], not {start_iteration!r}")
    if snapshot_at is not None and not start_iteration <= snapshot_at <= total:
        raise ConfigError(f"snapshot_at must be in [{start_iteration}, {total}], not {snapshot_at!r}")

    model.to(dev)
    if masks is not None:
        check_masks(masks, dict(model.named_parameters()))
        masks = {n: m.to(dev) for n, m in masks.items()}  # MaskedOptimizer zeros the masked entries
    optimizer = make_optimizer(model, config, masks, trainable=trainable)
    log = _Log(model, data, config, log_extra, keep_early_stop)
    snapshot = state_copy(model) if snapshot_at == start_iteration else None
    start_time = time.perf_counter()
    lr = math.nan

    cuda_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices), progress.task(label, total=total - start_iteration) as task:
        dropout_seed = seed63(seed, DROPOUT, start_iteration)
        torch.default_generator.manual_seed(dropout_seed)
        if dev.type == "cuda":
            torch.cuda.manual_seed(dropout_seed)
        model.train()
        for t in range(start_iteration, total):
            new_lr = lr_at(config, t, total)
            if new_lr != lr:
                lr = new_lr
                for group in optimizer.param_groups:
                    group["lr"] = lr
            logits, yb = batches.logits_and_targets(model, t)
            loss = F.cross_entropy(logits, yb)
            if regularizer is not None:
                loss = loss + regularizer()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss = loss.detach()
            log.add_loss(loss)
            it = t + 1
            info = StepInfo(it, loss, lr, model, optimizer)
            for cb in callbacks:
                cb(info)
            if snapshot_at == it:
                snapshot = state_copy(model)
            if it % eval_every == 0 or it == total or info.stop:
                log.record(it, lr, last=it == total or info.stop)
            task.advance(1)
            if info.stop:  # a callback ended the run here (e.g. the Early-Bird rule, ticketlab.tracking)
                total = it
                break
        if not log.rows:
            log.record(total, lr, last=True)
    return _result(log.rows, start_iteration, total, time.perf_counter() - start_time, snapshot, log.best_state)


#: Old names of :func:`fit` and :func:`evaluate_model` (issue 24): they trained and evaluated a
#: model, where ``ticketlab.train`` / ``ticketlab.evaluate`` take a ticket.
_RENAMED = {"train": "fit", "evaluate": "evaluate_model"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        from ticketlab.deprecation import warn_renamed

        warn_renamed(f"ticketlab.training.{name}", f"ticketlab.training.{_RENAMED[name]}", stacklevel=3)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
