"""``synflow``: Iterative Synaptic Flow Pruning (Tanaka et al., NeurIPS 2020), data-free.

Per round (Tanaka et al. 2020, Algorithm 1; the ``SynFlow`` scorer of the authors' code):

1. *linearize*: every parameter and buffer is replaced by its absolute value, so that
   ``R = 1^T (prod_l |W_l|) 1`` (their Eq. 2) for a network without biases;
2. feed an all-ones input (one sample of the data set's input shape; for a GCN the all-ones
   feature matrix on the data set's graph) and compute ``R = sum(output)``;
3. score = ``|dR/dθ ⊙ θ|`` (their Eq. 1 with the synaptic-flow objective), masked weights
   entering as zero.

The rounds follow the exponential schedule ``density^(k/n)`` (run by :func:`ticketlab.mining.mine`,
100 rounds by default). Batch norm is in eval mode by default, as in the reference code.

**Precision.** The scoring pass runs in float64 by default. Not because ``R`` would overflow
float32: at initialization ``R`` stays below 1e29 on every registered model (float32 reaches
3.4e38), and pruning only removes non-negative paths, so later rounds are smaller still. What
float64 buys is *reproducibility*: over 100 rounds, float32 rounding noise and the ties it
creates at each round's threshold cascade, so a float32 run ends with a visibly different mask
(Synaptic-Flow's own float32 and float64 runs agree with Jaccard 0.85 on vgg16 at density 0.01,
0.847 in ``benchmarks/bench_pai_reference.py``'s re-implementation of its loop; ticketlab's
exact-count runs 0.84 there, 1.0 on lenet_300_100 and resnet20; ``--precision float64,float32``
of that script measures both). ``float32`` is about twice as fast on CPU
(float64 convolutions take PyTorch's slow path).

``rescale`` (for networks deep enough that ``R`` does overflow float32) multiplies each pruned
layer's ``|W|`` by a power of two ``2^-e_l`` chosen once, so that the layer's gain on an all-ones
input is about 1. For a positively homogeneous network (ReLU, max/average pooling, no biases,
no batch-norm shifts, no residual sums; Tanaka et al.'s ``R`` is then a product over layers)
every score is multiplied by the one factor ``2^-sum(e_l)``, and since multiplying by a power of
two is exact in floating point, the scores are the unscaled ones times that factor, bit for
bit, and so is the ranking. Biases and residual sums are *not* rescaled with their layers, so
there the layers' relative weights change, and so does the ranking, a lot: at density 0.01
after 100 rounds the rescaled masks agree with the unscaled ones with Jaccard 0.29 on
lenet_300_100 (biases), 0.06 on resnet20 (residual sums) and 0.03 on vgg16 (both). It is off by default and meant
only for deep bias-free chains; no registered model needs it.

Implementation note: the linearized copy of the model is built once in :meth:`prepare`; a
round writes ``|θ0| ⊙ mask`` into it in place, runs one forward/backward pass and turns the
gradients autograd allocates into the scores in place (no other per-round allocation of
parameter size). The user's model is never modified, so nothing has to be restored afterwards.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from ticketlab.miners.base import Miner, MinerConfig, MiningContext, check_choices
from ticketlab.miners.registry import register_miner

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@register_miner("synflow")
class SynFlowMiner(Miner):
    """SynFlow (Tanaka et al. 2020): data-free iterative pruning by synaptic flow |dR/dθ ⊙ θ|, 100 rounds.

    The algorithm, and how the rounds are run, is in the module docstring."""

    default_rounds = 100

    @dataclass(frozen=True)
    class Config(MinerConfig):
        batchnorm: str = field(default="eval", metadata={
            "help": "batch-norm mode while scoring: eval (reference code) or train", "choices": ("eval", "train")})
        precision: str = field(default="float64", metadata={
            "help": "dtype of the scoring pass, float64 or float32 (synflow: float64 for reproducible masks; "
                    "float32 is ~2x faster on CPU and R does not overflow it on the registered models, but its "
                    "rounding noise can cascade over the rounds into a different mask)",
            "choices": tuple(_DTYPES)})
        rescale: bool = field(default=False, metadata={
            "help": "multiply each layer's |W| by a power of two so its gain is ~1, so R cannot overflow float32 on "
                    "very deep nets: the same ranking, exactly, for bias-free ReLU/pooling chains only; with biases "
                    "or residual sums a very different mask (no registered model needs it)"})

        def __post_init__(self) -> None:
            check_choices(self)

    def prepare(self, ctx: MiningContext) -> None:
        dtype = _DTYPES[self.config.precision]
        lin = copy.deepcopy(ctx.model).to(dtype)
        lin.train(self.config.batchnorm == "train")
        with torch.no_grad():
            for t in [*lin.parameters(), *lin.buffers()]:
                if t.is_floating_point():
                    t.abs_()
        named = dict(lin.named_parameters())
        for p in lin.parameters():
            p.requires_grad_(False)
        self._params = {n: named[n].requires_grad_(True) for n in ctx.params}
        self._abs = {n: p.detach().clone() for n, p in self._params.items()}
        if self.config.rescale:
            for a in self._abs.values():
                a.mul_(_power_of_two_gain(a))
        self._model = lin
        self.last_r: torch.Tensor | None = None  # R of the last round (detached), for diagnostics
        if ctx.spec.kind == "graph":
            g = ctx.data.graph
            self._inputs = (torch.ones(g.x.shape, dtype=dtype, device=ctx.device), g.edge_index.to(ctx.device))
        else:
            self._inputs = (torch.ones((1, *ctx.spec.input_shape), dtype=dtype, device=ctx.device),)

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        params = list(self._params.values())
        with torch.no_grad():
            for n, p in self._params.items():
                torch.mul(self._abs[n], masks[n], out=p.data)  # θ = |θ0| ⊙ mask, in place
        r = self._model(*self._inputs).sum()  # R of Tanaka et al. Eq. 2
        grads = torch.autograd.grad(r, params, allow_unused=True)
        self.last_r = r.detach()
        out = {}
        with torch.no_grad():
            for (n, p), g in zip(self._params.items(), grads):
                # Eq. 1: |dR/dθ ⊙ θ|, written over the fresh gradient autograd just allocated
                if g is None:  # R does not depend on it
                    out[n] = torch.zeros_like(p)
                elif g.is_contiguous():  # a fresh dense tensor: written over
                    out[n] = g.mul_(p).abs_()
                else:  # e.g. a broadcast view: not writable in place
                    out[n] = (g * p).abs_()
        return out

    def finish(self, ctx: MiningContext) -> None:
        self._model = self._params = self._abs = self._inputs = None  # type: ignore[assignment]


def _power_of_two_gain(w: torch.Tensor) -> float:
    """``2^-e`` with ``2^e`` the nearest power of two to the layer's mean gain on an all-ones input
    (the sum of ``|w|`` over everything but the output dimension, averaged over outputs); 1 for an
    all-zero layer. A power of two, so that multiplying by it rounds nothing."""
    gain = float(w.abs().sum(dtype=torch.float64)) / max(1, w.shape[0] if w.dim() else 1)
    if not gain > 0 or not math.isfinite(gain):
        return 1.0
    return 2.0 ** -round(math.log2(gain))
