"""``grasp``: Gradient Signal Preservation (Wang, Zhang & Grosse, ICLR 2020).

GraSP removes the weights whose removal reduces the gradient flow ``g^T g`` least (or increases
it). With ``H`` the Hessian of the loss and ``g`` its gradient at initialization, their Eq. 8 is

    S(-θ) = -θ ⊙ H g,

and the weights with the *highest* ``S(-θ)`` are removed. Equivalently this miner scores
``θ ⊙ H g`` and keeps the highest (the shared selection always keeps the highest scores).

As in the authors' code (``GraSP.py``): the outputs are divided by a temperature ``T = 200``
in both passes; ``g`` is the gradient of the loss (treated as a constant); ``H g`` is the
gradient of ``z = g_stopped · ∇L`` (a second backward pass through the first); ``g`` and ``H``
are restricted to the prunable weights. For a masked network ``θ0 ⊙ m`` the gradient is taken
with respect to the unmasked weights (``g ⊙ m``), as in a mask parameterisation ``w ⊙ m``.

``L`` is the mean cross-entropy on one class-balanced batch (default 10 samples per class), or
the sum over ``batches`` batches; for a graph, on sampled training nodes of the full graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ticketlab.errors import ConfigError
from ticketlab.miners._datadriven import DataDrivenConfig, DataDrivenMiner
from ticketlab.miners.base import MiningContext, register_miner


@register_miner("grasp")
class GraspMiner(DataDrivenMiner):
    """GraSP (Wang et al. 2020): keep the highest θ ⊙ Hg (remove the top of -θ ⊙ Hg) at init."""

    @dataclass(frozen=True)
    class Config(DataDrivenConfig):
        temperature: float = field(default=200.0, metadata={"help": "softmax temperature T dividing the outputs in both passes (reference code: 200)"})

        def __post_init__(self) -> None:
            super().__post_init__()
            if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
                raise ConfigError(f"temperature must be positive, got {self.temperature!r}")

    def hessian_gradient(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``H g`` at ``θ0 ⊙ masks`` (both restricted to the unpruned prunable weights)."""
        self.set_weights(masks)
        names, params = list(self._params), list(self._params.values())
        t = float(self.config.temperature)
        # Pass 1: g = ∇L(f(x)/T), summed over chunks and batches, then held constant.
        g = [torch.zeros_like(p) for p in params]
        for loss in self.loss_terms(t):
            for gi, d in zip(g, torch.autograd.grad(loss, params, allow_unused=True)):
                if d is not None:
                    gi.add_(d)
        g = [gi.mul_(masks[n]) for gi, n in zip(g, names)]
        # Pass 2: Hg = ∇(g_stopped · ∇L), accumulated in .grad (z is linear in the loss terms).
        for loss in self.loss_terms(t):
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            z = sum((gi * d).sum() for gi, d in zip(g, grads) if d is not None)
            if isinstance(z, torch.Tensor) and z.requires_grad:
                z.backward()
        return {n: (p.grad if p.grad is not None else torch.zeros_like(p)) * masks[n]
                for n, p in self._params.items()}

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hg = self.hessian_gradient(masks)
        # Wang et al. 2020, Eq. 8: S(-θ) = -θ ⊙ Hg is removed from the top, so keep the top of θ ⊙ Hg.
        return {n: p.detach() * hg[n] for n, p in self._params.items()}
