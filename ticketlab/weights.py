"""Weight treatments: what a network's prunable weights are set to before a method uses them.

One set of helpers for every method that needs them (the learned-mask miners' ``--weights``,
and the sanity checks and ticket training that reuse them). Every option that chooses a masked
network's starting weights is called ``weights`` (``docs/glossary.md``): a treatment here, or a
mask-1 action below. Each treatment maps a layer's
initial weights ``w0`` to new weights of the same shape; ``init`` leaves them as they are.

* ``init``: the model's own initialization (θ0).
* ``signed_constant``: ``sign(w0) * sqrt(2 / fan_in)`` (the "signed Kaiming constant" of
  Ramanujan et al. 2020, "What's Hidden in a Randomly Weighted Neural Network?", Sec. 4.1,
  ``σ = gain / sqrt(fan_in)`` with the ReLU gain ``sqrt(2)``; also used by Gem-Miner,
  Sreenivasan et al. 2022).
* ``signed_std``: ``sign(w0) * std(w0)`` with the layer's own (population) standard deviation (Zhou, Lan, Liu
  & Yosinski 2019, "Deconstructing Lottery Tickets", Sec. 4, "signed constant").
* ``scaled_signed_constant``: ``sign(w0) * sqrt(2 / (d * fan_in))``, the signed Kaiming constant
  divided by ``sqrt(d)``, where ``d`` is the layer's density (the fraction of its weights the mask
  keeps): edge-popup's ``scale_fan`` (allenai/hidden-networks). A mask of density ``d`` leaves
  about ``d * fan_in`` inputs per unit, so the Kaiming variance ``2 / fan_in`` of the dense layer
  is kept by the sparse one. Without it a deep sparse net's signal shrinks by about
  ``sqrt(d)`` per layer.

The density-dependent treatments (:data:`DENSITY_TREATMENTS`) take the layer's density as an
argument: a number for every layer, or a mapping from parameter name to density. Who applies a
treatment supplies it (the runner asks the miner, :meth:`ticketlab.miners.base.Miner.treatment_density`)
and records it in the provenance as ``weights_density``, so that a ticket's network can be
re-created (:func:`apply_recorded_treatment_`).

``fan_in`` of a weight shaped ``(out, in, *kernel)`` is ``in * prod(kernel)`` (a GCN layer's
``lin.weight`` is ``(out, in)`` like a linear layer). A zero weight stays zero (``sign(0) = 0``).

Example:
    >>> w0 = torch.tensor([[0.5, -2.0], [0.0, 1.0]])
    >>> treat_weights("signed_constant", w0).tolist()
    [[1.0, -1.0], [0.0, 1.0]]
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Union

import torch

from ticketlab.errors import ConfigError
from ticketlab.streams import BIAS, KEPT, KEPT_REINIT, seed32, sequence_generator


def fan_in(w: torch.Tensor) -> int:
    """Inputs per output unit of a weight shaped ``(out, in, *kernel)``.

    Example:
        >>> fan_in(torch.zeros(16, 3, 3, 3)), fan_in(torch.zeros(10, 300))
        (27, 300)
    """
    if w.dim() < 2:
        raise ConfigError(f"a weight treatment needs a weight of at least 2 dimensions, not shape {tuple(w.shape)}")
    return int(w[0].numel())


def _init(w0: torch.Tensor, density: float | None) -> torch.Tensor:
    return w0.clone()


def _signed_constant(w0: torch.Tensor, density: float | None) -> torch.Tensor:
    # Ramanujan et al. 2020, Sec. 4.1: w = sign(w0) * sigma_k, sigma_k = sqrt(2 / fan_in)
    return torch.sign(w0) * math.sqrt(2.0 / fan_in(w0))


def _signed_std(w0: torch.Tensor, density: float | None) -> torch.Tensor:
    # Zhou et al. 2019, Sec. 4: every kept weight set to sign(w0) * std of the layer's init
    return torch.sign(w0) * w0.double().std(correction=0).to(w0.dtype)


def _scaled_signed_constant(w0: torch.Tensor, density: float | None) -> torch.Tensor:
    # allenai/hidden-networks utils/builder.py:91-98 (commit dddf2d0, `init: signed_constant` with
    # `scale_fan: True`): fan = _calculate_correct_fan(w, mode) with mode "fan_in" (args.py:179),
    # scaled by the density; gain = calculate_gain(nonlinearity) with "relu" (args.py:181), i.e.
    # sqrt(2); w = sign(w) * gain / sqrt(fan). Line 95 writes the factor as (1 - prune_rate) while
    # utils/conv_type.py:20-25 keeps the fraction prune_rate of the weights (the README's
    # "weights_remaining"; their issue #9 reports the mismatch); we scale by the kept fraction d,
    # which keeps the Kaiming variance of the d * fan_in inputs a unit keeps.
    assert density is not None  # treat_weights checked it
    return torch.sign(w0) * math.sqrt(2.0 / (density * fan_in(w0)))


#: Name -> function ``(w0, density) -> treated weights`` (a new tensor; ``w0`` is not modified).
#: ``density`` is the layer's density for the treatments of :data:`DENSITY_TREATMENTS`, else unused.
WEIGHT_TREATMENTS: dict[str, Callable[[torch.Tensor, float | None], torch.Tensor]] = {
    "init": _init,
    "signed_constant": _signed_constant,
    "signed_std": _signed_std,
    "scaled_signed_constant": _scaled_signed_constant,
}

#: The treatments that need the layer's density (``density=`` of :func:`treat_weights`).
DENSITY_TREATMENTS = frozenset({"scaled_signed_constant"})

#: What ``density=`` of :func:`apply_treatment_` takes: one density for every layer, or one per name.
Densities = Union[float, Mapping[str, float], None]


def check_treatment(name: str) -> str:
    """``name`` if it is a known weight treatment, else a one-sentence :class:`ConfigError`."""
    if name not in WEIGHT_TREATMENTS:
        raise ConfigError(f"unknown weight treatment '{name}' (choose from: {', '.join(WEIGHT_TREATMENTS)})")
    return name


def needs_density(name: str) -> bool:
    """Whether treatment ``name`` needs the layer's density.

    Example:
        >>> needs_density("scaled_signed_constant"), needs_density("signed_constant")
        (True, False)
    """
    return check_treatment(name) in DENSITY_TREATMENTS


def _check_density(name: str, density: Any) -> float:
    if density is None:
        raise ConfigError(f"weight treatment '{name}' needs the layer's density, and none was given")
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise ConfigError(f"weight treatment '{name}' needs a layer density in (0, 1], got {density!r}")
    return float(density)


def treat_weights(name: str, w0: torch.Tensor, density: float | None = None) -> torch.Tensor:
    """The weights that treatment ``name`` makes of one layer's ``w0`` (a new tensor); ``density``
    is the layer's density, required by the treatments of :data:`DENSITY_TREATMENTS`.

    Example:
        >>> treat_weights("signed_std", torch.tensor([[1.0, -3.0]])).tolist()
        [[2.0, -2.0]]
        >>> treat_weights("scaled_signed_constant", torch.tensor([[0.3, -0.1]]), density=0.25).tolist()
        [[2.0, -2.0]]
    """
    if needs_density(name):
        density = _check_density(name, density)
    return WEIGHT_TREATMENTS[name](w0.detach(), density)


def _layer_density(name: str, densities: Densities, param: str) -> float | None:
    if densities is None or not needs_density(name):
        return None
    if isinstance(densities, Mapping):
        if param not in densities:
            raise ConfigError(f"weight treatment '{name}' needs the density of '{param}', and none was given")
        return densities[param]
    return densities


@torch.no_grad()
def apply_treatment_(params: Mapping[str, torch.Tensor], name: str, density: Densities = None) -> None:
    """Overwrite every tensor of ``params`` in place with its treated weights.

    ``density``: the layers' density for the treatments that need one (one number for every
    layer, or a mapping from the names of ``params`` to densities); ignored by the others.

    Example:
        >>> lin = torch.nn.Linear(2, 2)
        >>> apply_treatment_({"weight": lin.weight}, "signed_constant")
        >>> sorted({abs(v) for v in lin.weight.flatten().tolist()})
        [1.0]
        >>> apply_treatment_({"weight": lin.weight}, "scaled_signed_constant", density={"weight": 0.5})
        >>> sorted({abs(v) for v in lin.weight.flatten().tolist()})
        [1.4142135381698608]
    """
    check_treatment(name)
    if name == "init":
        return
    for n, p in params.items():
        p.copy_(treat_weights(name, p, _layer_density(name, density, n)))


def recorded_density(provenance: Mapping[str, Any]) -> Densities:
    """The layer density a ticket's weight treatment was applied with (``weights_density`` of its
    provenance: a number, a table of numbers, or absent).

    Example:
        >>> recorded_density({"weights": "scaled_signed_constant", "weights_density": 0.1})
        0.1
    """
    value = provenance.get("weights_density")
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return value


@torch.no_grad()
def apply_recorded_treatment_(params: Mapping[str, torch.Tensor], provenance: Mapping[str, Any]) -> None:
    """Apply the weight treatment a ticket's provenance records (``weights`` and, where it needs
    one, ``weights_density``) to ``params``, as the runner applied it when mining.

    Example:
        >>> lin = torch.nn.Linear(2, 2)
        >>> apply_recorded_treatment_({"weight": lin.weight}, {"weights": "scaled_signed_constant", "weights_density": 0.5})
        >>> sorted({abs(v) for v in lin.weight.flatten().tolist()})
        [1.4142135381698608]
    """
    apply_treatment_(params, check_treatment(str(provenance.get("weights", "init"))), recorded_density(provenance))


# ---------------------------------------------------------------------------------------------
# Mask-1 actions: what the *kept* weights of a mask are set to (Zhou et al. 2019, Sec. 4)

#: The values of a ``weights`` option that sets the kept weights (the supermask miner,
#: ``ticketlab.train``, ``ticketlab.evaluate``, ``ticketlab.sanity_check``; called ``kept`` before
#: issue 24). ``signed_constant`` / ``signed_std`` are the treatments above (Zhou et al.'s "signed
#: constant" is ``signed_std`` here); ``rand_signed_*`` the same
#: constants with their signs shuffled (among the layer's kept weights, or with ``within="layer"``
#: over the whole layer, as Zhou's ``rand_signed_constant``); ``random_reshuffle`` permutes the
#: layer's kept θ0 values among its kept positions, ``signed_reshuffle`` permutes their magnitudes
#: and keeps each position's own sign; ``reinit`` takes a fresh draw of the initialization;
#: ``random_reinit`` is a permutation of the *whole* layer's θ0 (so the kept weights take θ0 values
#: of pruned positions too) and ``signed_reinit`` permutes the whole layer's magnitudes under each
#: position's own sign (Zhou et al.'s ``random_reinit`` / ``signed_reinit``,
#: uber-research/deconstructing-lottery-tickets ``train_lottery.py`` l. 540-560).
KEPT_ACTIONS = ("init", "signed_constant", "signed_std", "rand_signed_constant", "rand_signed_std",
                "random_reshuffle", "signed_reshuffle", "reinit", "random_reinit", "signed_reinit")

#: Where ``rand_signed_*`` shuffle the signs: among the layer's kept weights (ticketlab) or over the
#: whole layer before masking (Zhou et al., ``train_lottery.py`` l. 604-616).
SIGN_SHUFFLES = ("kept", "layer")


def kept_generator(seed: int) -> torch.Generator:
    """The CPU generator of the random mask-1 actions of a run with ``seed`` (shared by the
    ``supermask`` miner and :func:`ticketlab.evaluate`, so both draw the same permutations).

    Example:
        >>> torch.equal(torch.rand(2, generator=kept_generator(0)), torch.rand(2, generator=kept_generator(0)))
        True
    """
    return sequence_generator(seed, KEPT)


def bias_generator(seed: int) -> torch.Generator:
    """The CPU generator of the mask-1 actions on biases (:func:`start_biases`) of a run with
    ``seed``: a stream of its own, so the weights' permutations are those of a run without biases.

    Example:
        >>> torch.equal(torch.rand(2, generator=bias_generator(0)), torch.rand(2, generator=kept_generator(0)))
        False
    """
    return sequence_generator(seed, BIAS)


def reinit_draw_seed(seed: int) -> int:
    """The model seed of ``--weights reinit``'s fresh weights for a run with ``seed`` (its own stream)."""
    return seed32(seed, KEPT_REINIT)


def check_action(action: str) -> str:
    """``action`` if it is a known mask-1 action, else a one-sentence :class:`ConfigError`.

    Example:
        >>> check_action("signed_std")
        'signed_std'
    """
    if action not in KEPT_ACTIONS:
        raise ConfigError(f"unknown weights action '{action}' (choose from: {', '.join(KEPT_ACTIONS)})")
    return action


def _permuted(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    perm = torch.randperm(values.numel(), generator=generator).to(values.device)
    return values[perm]


def _layer(action: str, w0: torch.Tensor, keep: torch.Tensor, generator: torch.Generator,
           fresh: torch.Tensor | None, within: str) -> torch.Tensor:
    """The whole layer under ``action`` before masking (pruned positions: the action's own values
    where it sets the whole layer, else ``w0``)."""
    if action in ("init", "signed_constant", "signed_std"):
        return treat_weights(action, w0)
    if action == "reinit":
        if fresh is None or fresh.shape != w0.shape:
            raise ConfigError("weights action reinit needs a fresh draw of the layer's weights")
        return fresh.detach().to(w0.device, w0.dtype)
    flat = w0.flatten()
    if action == "random_reinit":  # train_lottery.py l. 540-544: shuffle(flatten(θ0))
        return _permuted(flat, generator).view(w0.shape)
    if action == "signed_reinit":  # l. 550-557: |shuffle(flatten(θ0))| * sign(θ0)
        return (_permuted(flat, generator).abs().view(w0.shape) * torch.sign(w0))
    if action.startswith("rand_signed_") and within == "layer":
        # l. 604-615: sign(θ0) * constant, flattened and shuffled over the whole layer
        return _permuted(treat_weights(action[len("rand_"):], w0).flatten(), generator).view(w0.shape)
    full = w0.clone()
    kept0 = w0[keep]
    if action.startswith("rand_signed_"):
        base = treat_weights(action[len("rand_"):], w0)[keep].abs()
        full[keep] = base * _permuted(torch.sign(kept0), generator)  # signs shuffled among kept
    elif action == "random_reshuffle":
        full[keep] = _permuted(kept0, generator)
    else:  # signed_reshuffle: magnitudes shuffled, each position keeps its own sign
        full[keep] = _permuted(kept0.abs(), generator) * torch.sign(kept0)
    return full


def _check_within(within: str) -> None:
    if within not in SIGN_SHUFFLES:
        raise ConfigError(f"signs shuffle within 'kept' or 'layer', not {within!r}")


@torch.no_grad()
def kept_weights(action: str, w0: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator,
                 fresh: torch.Tensor | None = None, within: str = "kept") -> torch.Tensor:
    """One layer's weights under the mask-1 ``action``: kept positions set, pruned ones zero.

    ``generator`` (CPU) drives the permutations; ``fresh`` is the layer's fresh draw for
    ``reinit``; ``within`` is where ``rand_signed_*`` shuffle the signs (:data:`SIGN_SHUFFLES`).
    ``w0`` and ``mask`` are not modified. A bias (1-D) takes every action but the Kaiming
    constants (``signed_constant``, ``rand_signed_constant``), which need a fan-in.

    Example:
        >>> w0 = torch.tensor([1.0, -2.0, 3.0, -4.0]); m = torch.tensor([True, True, False, True])
        >>> kept_weights("init", w0, m, generator=torch.Generator()).tolist()
        [1.0, -2.0, 0.0, -4.0]
        >>> w = kept_weights("signed_reshuffle", w0, m, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(torch.sign(w), torch.sign(w0) * m), sorted(w.abs().tolist())
        (True, [0.0, 1.0, 2.0, 4.0])
        >>> w = kept_weights("random_reinit", w0, m, generator=torch.Generator().manual_seed(0))
        >>> set(w[m].tolist()) <= set(w0.tolist()), w[2].item()   # θ0 values from anywhere in the layer
        (True, 0.0)
    """
    check_action(action)
    _check_within(within)
    w0 = w0.detach()
    keep = mask.to(device=w0.device, dtype=torch.bool)
    full = _layer(action, w0, keep, generator, fresh, within)
    if action in ("init", "signed_constant", "signed_std", "reinit"):
        return full * keep  # (a negative pruned entry gives -0.0, as these actions always did)
    return torch.where(keep, full, torch.zeros_like(full))


@torch.no_grad()
def start_weights(action: str, w0: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator,
                  fresh: torch.Tensor | None = None, within: str = "kept") -> torch.Tensor:
    """The whole layer a masked network starts from under the mask-1 ``action``: the kept
    positions as :func:`kept_weights` sets them, the pruned ones the action's whole-layer weights
    where it has them (``init``: ``w0``; ``signed_*``: the treated ``w0``; ``reinit``: ``fresh``;
    ``random_reinit`` / ``signed_reinit`` and, with ``within="layer"``, ``rand_signed_*``: the
    permuted layer), else ``w0``. Masked training zeroes the pruned positions anyway; keeping
    values there makes the result a full snapshot (a trained ticket's ``init``) that later
    transforms can use.

    Example:
        >>> w0 = torch.tensor([[0.5, -2.0]]); m = torch.tensor([[True, False]])
        >>> start_weights("signed_constant", w0, m, generator=torch.Generator()).tolist()
        [[1.0, -1.0]]
        >>> start_weights("init", w0, m, generator=torch.Generator()).tolist()
        [[0.5, -2.0]]
    """
    check_action(action)
    _check_within(within)
    w0 = w0.detach()
    keep = mask.to(device=w0.device, dtype=torch.bool)
    return _layer(action, w0, keep, generator, fresh, within)


# ---------------------------------------------------------------------------------------------
# Conventions that are not ticketlab's defaults (Zhou et al.'s: the supermask miner's protocol
# "reference"): recorded in the provenance, applied by the helpers below wherever a ticket's start
# is made (the miner, ticketlab.retraining.rebuild / train, ticketlab.evaluate).

#: Provenance key of a ticket's mask-1 conventions when they differ from ticketlab's defaults:
#: ``{"action": A, "signs": "layer", "biases": {bias name: [pruned flat indices], ...}}``: the
#: action ``A`` of the ticket's start was applied with ``within=signs``, and to the biases listed
#: (those of the pruned layers) too, under bias masks that prune the listed indices. Absent:
#: signs shuffle among the kept weights, biases stay at their initial values, unmasked.
KEPT_CONVENTIONS = "kept_conventions"


def layer_biases(named: Mapping[str, torch.Tensor], weights: Any) -> dict[str, str]:
    """Weight name -> name of the bias of the same module (``a.b.weight`` -> ``a.b.bias``), for
    the ``weights`` whose module has a bias among ``named``.

    Example:
        >>> lin = torch.nn.Linear(2, 2); conv = torch.nn.Conv2d(1, 1, 1, bias=False)
        >>> named = {**{f"fc.{k}": v for k, v in lin.named_parameters()}, "conv.weight": conv.weight}
        >>> layer_biases(named, ["fc.weight", "conv.weight"])
        {'fc.weight': 'fc.bias'}
    """
    out = {}
    for w in weights:
        owner, _, attr = str(w).rpartition(".")
        bias = f"{owner}.bias" if owner else "bias"
        if attr == "weight" and bias in named and named[bias] is not None:
            out[w] = bias
    return out


def bias_record(masks: Mapping[str, torch.Tensor]) -> dict[str, list[int]]:
    """The provenance form of bias masks: bias name -> sorted flat indices of its pruned entries.

    Example:
        >>> bias_record({"fc.bias": torch.tensor([True, False, True, False])})
        {'fc.bias': [1, 3]}
    """
    return {n: torch.nonzero(~m.flatten().bool()).flatten().tolist() for n, m in masks.items()}


def recorded_conventions(provenance: Mapping[str, Any]) -> tuple[str, str | None, dict[str, list[int]]]:
    """``(signs, action, biases)`` of a ticket's :data:`KEPT_CONVENTIONS` record, checked (an
    untrusted file may hold anything): ticketlab's defaults ``("kept", None, {})`` without one.

    Example:
        >>> recorded_conventions({}), recorded_conventions({KEPT_CONVENTIONS: {"action": "init", "signs": "layer",
        ...                                                                     "biases": {"fc.bias": [0]}}})
        (('kept', None, {}), ('layer', 'init', {'fc.bias': [0]}))
    """
    record = provenance.get(KEPT_CONVENTIONS)
    if record is None:
        return "kept", None, {}
    bad = f"the provenance's {KEPT_CONVENTIONS} "
    if not isinstance(record, Mapping):
        raise ConfigError(bad + "is not a table")
    signs, action, biases = record.get("signs", "kept"), record.get("action"), record.get("biases", {})
    if signs not in SIGN_SHUFFLES:
        raise ConfigError(bad + f"has signs {str(signs)[:30]!r}, not one of {', '.join(SIGN_SHUFFLES)}")
    if action is not None and action not in KEPT_ACTIONS:
        raise ConfigError(bad + f"has the unknown action {str(action)[:30]!r}")
    if not isinstance(biases, Mapping) or not all(
            isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
            for v in biases.values()):
        raise ConfigError(bad + "has biases that are not lists of indices")
    return signs, action, {str(k): list(v) for k, v in biases.items()}


def bias_masks(pruned: Mapping[str, list[int]], named: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Boolean masks of the biases of a :data:`KEPT_CONVENTIONS` record (``pruned``: bias name ->
    pruned flat indices), on the biases' devices; a name the model lacks or an index out of range
    is a one-line :class:`ConfigError`.

    Example:
        >>> lin = torch.nn.Linear(2, 3)
        >>> bias_masks({"bias": [2]}, dict(lin.named_parameters()))["bias"].tolist()
        [True, True, False]
    """
    out = {}
    for name, idx in pruned.items():
        if name not in named:
            raise ConfigError(f"the ticket masks bias '{name}', which its model does not have")
        b = named[name]
        if any(not 0 <= i < b.numel() for i in idx) or len(set(idx)) != len(idx):
            raise ConfigError(f"the ticket's pruned entries of bias '{name}' are not distinct indices below {b.numel()}")
        m = torch.ones(b.numel(), dtype=torch.bool, device=b.device)
        m[torch.as_tensor(idx, dtype=torch.long, device=b.device)] = False
        out[name] = m.view(b.shape)
    return out


@torch.no_grad()
def start_biases(action: str, b0: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], *, seed: int,
                 within: str = "layer", fresh: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The biases a network starts from when the mask-1 ``action`` applies to biases too (Zhou et
    al.: ``train_lottery.py`` applies every action to each of ``model.trainable_weights``, biases
    included, l. 508-688): :func:`kept_weights` of each bias under its mask, pruned entries 0 (the
    masked layer's ``bias * bias_mask``, ``masked_layers.py`` l. 34-38), the permutations drawn
    from :func:`bias_generator` of ``seed``, in the order of ``b0``.

    Example:
        >>> b = {"fc.bias": torch.tensor([0.25, -0.5, 0.0, 0.75])}
        >>> m = {"fc.bias": torch.tensor([True, True, True, False])}
        >>> start_biases("init", b, m, seed=0)["fc.bias"].tolist()
        [0.25, -0.5, 0.0, 0.0]
        >>> sorted(start_biases("random_reshuffle", b, m, seed=0)["fc.bias"].tolist())
        [-0.5, 0.0, 0.0, 0.25]
    """
    check_action(action)
    if action in ("signed_constant", "rand_signed_constant"):
        raise ConfigError(f"weights action {action} (the Kaiming constant sqrt(2/fan_in)) has no value for a "
                          "bias, and this ticket's biases take the mask-1 actions: use signed_std (Zhou's constant)")
    gen = bias_generator(seed)
    out = {}
    for n, b in b0.items():
        if action == "reinit" and (fresh is None or n not in fresh):
            raise ConfigError(f"weights action reinit needs a fresh draw of bias '{n}'")
        out[n] = kept_weights(action, b, masks[n], generator=gen, within=within,
                              fresh=None if fresh is None else fresh[n])
    return out
