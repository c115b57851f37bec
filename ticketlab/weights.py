"""Weight treatments: what a network's prunable weights are set to before a method uses them.

One set of helpers for every method that needs them (the learned-mask miners' ``--weights``,
and the sanity checks and ticket training that reuse them). Each treatment maps a layer's
initial weights ``w0`` to new weights of the same shape; ``init`` leaves them as they are.

* ``init``: the model's own initialization (θ0).
* ``signed_constant``: ``sign(w0) * sqrt(2 / fan_in)`` (the "signed Kaiming constant" of
  Ramanujan et al. 2020, "What's Hidden in a Randomly Weighted Neural Network?", Sec. 4.1,
  ``σ = gain / sqrt(fan_in)`` with the ReLU gain ``sqrt(2)``; also used by Gem-Miner,
  Sreenivasan et al. 2022).
* ``signed_std``: ``sign(w0) * std(w0)`` with the layer's own (population) standard deviation (Zhou, Lan, Liu
  & Yosinski 2019, "Deconstructing Lottery Tickets", Sec. 4, "signed constant").

``fan_in`` of a weight shaped ``(out, in, *kernel)`` is ``in * prod(kernel)`` (a GCN layer's
``lin.weight`` is ``(out, in)`` like a linear layer). A zero weight stays zero (``sign(0) = 0``).

Example:
    >>> w0 = torch.tensor([[0.5, -2.0], [0.0, 1.0]])
    >>> treat_weights("signed_constant", w0).tolist()
    [[1.0, -1.0], [0.0, 1.0]]
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch

from ticketlab.errors import ConfigError


def fan_in(w: torch.Tensor) -> int:
    """Inputs per output unit of a weight shaped ``(out, in, *kernel)``.

    Example:
        >>> fan_in(torch.zeros(16, 3, 3, 3)), fan_in(torch.zeros(10, 300))
        (27, 300)
    """
    if w.dim() < 2:
        raise ConfigError(f"a weight treatment needs a weight of at least 2 dimensions, not shape {tuple(w.shape)}")
    return int(w[0].numel())


def _init(w0: torch.Tensor) -> torch.Tensor:
    return w0.clone()


def _signed_constant(w0: torch.Tensor) -> torch.Tensor:
    # Ramanujan et al. 2020, Sec. 4.1: w = sign(w0) * sigma_k, sigma_k = sqrt(2 / fan_in)
    return torch.sign(w0) * math.sqrt(2.0 / fan_in(w0))


def _signed_std(w0: torch.Tensor) -> torch.Tensor:
    # Zhou et al. 2019, Sec. 4: every kept weight set to sign(w0) * std of the layer's init
    return torch.sign(w0) * w0.double().std(correction=0).to(w0.dtype)


#: Name -> function ``w0 -> treated weights`` (a new tensor; ``w0`` is not modified).
WEIGHT_TREATMENTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "init": _init,
    "signed_constant": _signed_constant,
    "signed_std": _signed_std,
}


def check_treatment(name: str) -> str:
    """``name`` if it is a known weight treatment, else a one-sentence :class:`ConfigError`."""
    if name not in WEIGHT_TREATMENTS:
        raise ConfigError(f"unknown weight treatment '{name}' (choose from: {', '.join(WEIGHT_TREATMENTS)})")
    return name


def treat_weights(name: str, w0: torch.Tensor) -> torch.Tensor:
    """The weights that treatment ``name`` makes of one layer's ``w0`` (a new tensor).

    Example:
        >>> treat_weights("signed_std", torch.tensor([[1.0, -3.0]])).tolist()
        [[2.0, -2.0]]
    """
    return WEIGHT_TREATMENTS[check_treatment(name)](w0.detach())


@torch.no_grad()
def apply_treatment_(params: Mapping[str, torch.Tensor], name: str) -> None:
    """Overwrite every tensor of ``params`` in place with its treated weights.

    Example:
        >>> lin = torch.nn.Linear(2, 2)
        >>> apply_treatment_({"weight": lin.weight}, "signed_constant")
        >>> sorted({abs(v) for v in lin.weight.flatten().tolist()})
        [1.0]
    """
    check_treatment(name)
    if name == "init":
        return
    for p in params.values():
        p.copy_(treat_weights(name, p))


# ---------------------------------------------------------------------------------------------
# Mask-1 actions: what the *kept* weights of a mask are set to (Zhou et al. 2019, Sec. 4)

#: The values ``--kept`` takes. ``signed_constant`` / ``signed_std`` are the treatments above
#: (Zhou et al.'s "signed constant" is ``signed_std`` here); ``rand_signed_*`` the same
#: constants with the kept weights' signs shuffled within the layer; ``random_reshuffle``
#: permutes the layer's kept θ0 values among its kept positions, ``signed_reshuffle`` permutes
#: their magnitudes and keeps each position's own sign; ``reinit`` takes a fresh draw.
KEPT_ACTIONS = ("init", "signed_constant", "signed_std", "rand_signed_constant", "rand_signed_std",
                "random_reshuffle", "signed_reshuffle", "reinit")


_KEPT_STREAM, _REINIT_STREAM = 0x6E97, 0x2E1


def kept_generator(seed: int) -> torch.Generator:
    """The CPU generator of the random mask-1 actions of a run with ``seed`` (shared by the
    ``supermask`` miner and :func:`ticketlab.evaluate`, so both draw the same permutations).

    Example:
        >>> torch.equal(torch.rand(2, generator=kept_generator(0)), torch.rand(2, generator=kept_generator(0)))
        True
    """
    import numpy as np

    return torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), _KEPT_STREAM]).generate_state(1)[0]))


def reinit_draw_seed(seed: int) -> int:
    """The model seed of ``--kept reinit``'s fresh weights for a run with ``seed`` (its own stream)."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), _REINIT_STREAM]).generate_state(1)[0])


def check_kept(action: str) -> str:
    """``action`` if it is a known mask-1 action, else a one-sentence :class:`ConfigError`."""
    if action not in KEPT_ACTIONS:
        raise ConfigError(f"unknown kept-weights action '{action}' (choose from: {', '.join(KEPT_ACTIONS)})")
    return action


def _permuted(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    perm = torch.randperm(values.numel(), generator=generator).to(values.device)
    return values[perm]


@torch.no_grad()
def kept_weights(action: str, w0: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator,
                 fresh: torch.Tensor | None = None) -> torch.Tensor:
    """One layer's weights under the mask-1 ``action``: kept positions set, pruned ones zero.

    ``generator`` (CPU) drives the permutations; ``fresh`` is the layer's fresh draw for
    ``reinit``. ``w0`` and ``mask`` are not modified.

    Example:
        >>> w0 = torch.tensor([1.0, -2.0, 3.0, -4.0]); m = torch.tensor([True, True, False, True])
        >>> kept_weights("init", w0, m, generator=torch.Generator()).tolist()
        [1.0, -2.0, 0.0, -4.0]
        >>> w = kept_weights("signed_reshuffle", w0, m, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(torch.sign(w), torch.sign(w0) * m), sorted(w.abs().tolist())
        (True, [0.0, 1.0, 2.0, 4.0])
    """
    check_kept(action)
    w0 = w0.detach()
    keep = mask.to(device=w0.device, dtype=torch.bool)
    out = torch.zeros_like(w0)
    if action in ("init", "signed_constant", "signed_std"):
        return treat_weights(action, w0) * keep
    if action == "reinit":
        if fresh is None or fresh.shape != w0.shape:
            raise ConfigError("kept-weights action reinit needs a fresh draw of the layer's weights")
        return fresh.detach().to(w0.device, w0.dtype) * keep
    kept0 = w0[keep]
    if action.startswith("rand_signed_"):
        base = treat_weights(action[len("rand_"):], w0)[keep].abs()
        out[keep] = base * _permuted(torch.sign(kept0), generator)  # signs shuffled among kept
    elif action == "random_reshuffle":
        out[keep] = _permuted(kept0, generator)
    else:  # signed_reshuffle: magnitudes shuffled, each position keeps its own sign
        out[keep] = _permuted(kept0.abs(), generator) * torch.sign(kept0)
    return out


@torch.no_grad()
def start_weights(action: str, w0: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator,
                  fresh: torch.Tensor | None = None) -> torch.Tensor:
    """The whole layer a masked network starts from under the mask-1 ``action``: the kept
    positions as :func:`kept_weights` sets them, the pruned ones the action's whole-layer weights
    where it has them (``init``: ``w0``; ``signed_*``: the treated ``w0``; ``reinit``: ``fresh``),
    else ``w0``. Masked training zeroes the pruned positions anyway; keeping values there makes
    the result a full snapshot (a trained ticket's ``init``) that later transforms can use.

    Example:
        >>> w0 = torch.tensor([[0.5, -2.0]]); m = torch.tensor([[True, False]])
        >>> start_weights("signed_constant", w0, m, generator=torch.Generator()).tolist()
        [[1.0, -1.0]]
        >>> start_weights("init", w0, m, generator=torch.Generator()).tolist()
        [[0.5, -2.0]]
    """
    kept = kept_weights(action, w0, mask, generator=generator, fresh=fresh)
    if action in ("signed_constant", "signed_std"):
        base = treat_weights(action, w0.detach())
    elif action == "reinit":
        base = fresh.detach().to(w0.device, w0.dtype)  # kept_weights checked it
    else:
        base = w0.detach()
    return torch.where(mask.to(device=w0.device, dtype=torch.bool), kept, base)
