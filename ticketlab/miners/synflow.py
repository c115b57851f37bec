"""``synflow``: Iterative Synaptic Flow Pruning (Tanaka et al., NeurIPS 2020), data-free.

Per round (Tanaka et al. 2020, Algorithm 1; the ``SynFlow`` scorer of the authors' code):

1. *linearize*: every parameter and buffer is replaced by its absolute value, so that
   ``R = 1^T (prod_l |W_l|) 1`` (their Eq. 2) for a network without biases;
2. feed an all-ones input (one sample of the data set's input shape; for a GCN the all-ones
   feature matrix on the data set's graph) and compute ``R = sum(output)`` in float64, because
   ``R`` overflows float32 on deep networks;
3. score = ``|dR/dθ ⊙ θ|`` (their Eq. 1 with the synaptic-flow objective), masked weights
   entering as zero.

The rounds follow the exponential schedule ``density^(k/n)`` (run by :func:`ticketlab.mining.mine`,
100 rounds by default). Batch norm is in eval mode by default, as in the reference code.

Implementation note: the linearized float64 copy of the model is built once in :meth:`prepare`;
a round only writes ``|θ0| ⊙ mask`` into it and runs one forward/backward pass. The user's model
is never modified, so nothing has to be restored afterwards.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from ticketlab.miners.base import Miner, MinerConfig, MiningContext, check_choices, register_miner

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
            "help": "dtype of the scoring pass: float64 or float32 (float32 overflows on deep nets)",
            "choices": tuple(_DTYPES)})

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
        self._model = lin
        if ctx.spec.kind == "graph":
            g = ctx.data.graph
            self._inputs = (torch.ones(g.x.shape, dtype=dtype, device=ctx.device), g.edge_index.to(ctx.device))
        else:
            self._inputs = (torch.ones((1, *ctx.spec.input_shape), dtype=dtype, device=ctx.device),)

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            for n, p in self._params.items():
                torch.mul(self._abs[n], masks[n], out=p.data)
                p.grad = None
        r = self._model(*self._inputs).sum()  # R of Tanaka et al. Eq. 2
        r.backward()
        return {n: (p.grad * p.detach()).abs() for n, p in self._params.items()}

    def finish(self, ctx: MiningContext) -> None:
        self._model = self._params = self._abs = self._inputs = None  # type: ignore[assignment]
