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

When the loss is one term (one batch in one chunk of :data:`~ticketlab.miners._datadriven.CHUNK`
samples, the default), both passes share one forward pass: ``g`` is read off the
``create_graph`` backward and ``Hg`` is one double-backward pass through that same graph (the
reference runs a second forward pass; the values are the same). With several chunks or batches
``g`` is the sum over all of them before pass 2 can start, so pass 2 runs the forward again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ticketlab.errors import ConfigError
from ticketlab.miners._datadriven import DataDrivenConfig, DataDrivenMiner, take_grad
from ticketlab.miners.base import MiningContext
from ticketlab.miners.registry import register_miner


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
        terms = self.loss_terms(t)
        if self.single_term():
            # One loss term (one batch in one chunk, the default): its graph serves both passes.
            # g = ∇L(f(x)/T) comes out of the create_graph backward (same values as a plain one),
            # then Hg = ∇(g_stopped · ∇L) is one double-backward pass through that graph.
            grads = torch.autograd.grad(next(terms), params, create_graph=True, allow_unused=True)
            g = [None if d is None else d.detach() * masks[n] for d, n in zip(grads, names)]
            _accumulate_hg(g, grads)
        else:
            # Pass 1: g = ∇L(f(x)/T), summed over chunks and batches, then held constant.
            g = [torch.zeros_like(p) for p in params]
            for loss in terms:
                for gi, d in zip(g, torch.autograd.grad(loss, params, allow_unused=True)):
                    if d is not None:
                        gi.add_(d)
            g = [gi.mul_(masks[n]) for gi, n in zip(g, names)]
            # Pass 2: Hg = ∇(g_stopped · ∇L), accumulated in .grad (z is linear in the loss terms).
            for loss in self.loss_terms(t):
                _accumulate_hg(g, torch.autograd.grad(loss, params, create_graph=True, allow_unused=True))
        return {n: take_grad(p).mul_(masks[n]) for n, p in self._params.items()}

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hg = self.hessian_gradient(masks)
        # Wang et al. 2020, Eq. 8: S(-θ) = -θ ⊙ Hg is removed from the top, so keep the top of θ ⊙ Hg.
        return {n: hg[n].mul_(p.detach()) for n, p in self._params.items()}


def _accumulate_hg(g: list[torch.Tensor | None], grads: tuple[torch.Tensor | None, ...]) -> None:
    """Backward of ``z = sum_i g_i · grads_i`` (``g`` constant): adds ``H g`` to the ``.grad`` of the
    parameters (Wang et al. 2020, Sec. 4: the Hessian-gradient product by double backpropagation)."""
    z = sum((gi * d).sum() for gi, d in zip(g, grads) if gi is not None and d is not None)
    if isinstance(z, torch.Tensor) and z.requires_grad:
        z.backward()
