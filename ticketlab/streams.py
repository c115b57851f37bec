"""Named random streams: every seed offset ticketlab draws from, in one table (no torch import).

A run has one seed. Each random step draws from a stream of its own, derived from the seed and
the stream's value, so that one step's draws never repeat or shift another's (adding a draw to
the miner does not move the tie draws). The model's initialisation draws from the seed itself
(:func:`ticketlab.models.create_model`), and the data split from ``numpy.random.default_rng(seed)``
(:mod:`ticketlab.data.splits`); every other stream is named here.

Two derivations are in use, and each call site keeps the one it has always used: the values and
the styles decide every mask, so neither may change.

* **offset**: a ``torch.Generator`` seeded with ``seed + value`` (:func:`offset_generator`);
* **sequence**: ``numpy.random.SeedSequence([seed, value, *keys])``, read as a numpy generator
  (:func:`numpy_rng`), a 32-bit seed (:func:`seed32`; :func:`sequence_generator` seeds a CPU
  ``torch.Generator`` with it) or a 63-bit seed (:func:`seed63`). Two metrics streams put their
  value last instead (``[seed, ..., value]``, :func:`words_rng`).

==================  ==========  ========================  =============================================
name                value       style                     what draws from it
==================  ==========  ========================  =============================================
MINER               0x5EED      offset                    the miner's own draws (``MiningContext.generator``:
                                                          random scores, SNIP/GraSP batches, ...)
TIE                 0x71E5      offset                    ties at a selection threshold
                                                          (``MiningContext.tie_generator``)
BERNOULLI           0xBE2       offset, run's device      ``supermask_learned``'s Bernoulli masks
KEPT                0x6E97      sequence, 32-bit, torch   the random mask-1 actions
                                                          (:func:`ticketlab.weights.kept_generator`)
BIAS                0xB1A5      sequence, 32-bit, torch   the mask-1 actions on biases
                                                          (:func:`ticketlab.weights.bias_generator`)
KEPT_REINIT         0x2E1       sequence, 32-bit          the model seed of ``--kept reinit``'s fresh
                                                          weights (:func:`ticketlab.weights.reinit_draw_seed`)
IMP_REINIT          0x1E1217    sequence + round, 63-bit  the model seed of IMP's ``--reset reinit``
                                                          in a round (:func:`ticketlab.miners.imp.reinit_seed`)
RANDOM_LABELS       0x1AB5      sequence, numpy           ``--data-corruption random_labels``
RANDOM_PIXELS       0x91C5      sequence, numpy           ``--data-corruption random_pixels``
BATCH_ORDER         1           sequence + epoch, 63-bit  training's minibatch order in an epoch
DROPOUT             2           sequence + start, 63-bit  training's dropout (the global torch generator,
                                                          from the first iteration of a run)
RECALIBRATION       3           sequence, 63-bit          the batches that re-estimate batch-norm
                                                          statistics (:func:`ticketlab.training.recalibrate_batchnorm`)
ALIGNED_NULL        14          sequence, numpy           the random mask pairs of the aligned null
                                                          (:func:`ticketlab.metrics.align.aligned_null_counts`)
RELATIONAL_RANDOM   26          last word, numpy          the relational graph's random-count null masks
                                                          (``[seed, ticket stream, layer, 26]``)
RELATIONAL_NODES    27          last word, numpy          the relational graph's node sample
                                                          (``[seed, layer, 27]``)
DEGREE_SELF         1 << 31     added to a ticket stream  the second copy of a ticket compared with itself
                                                          in the degree-preserving null
==================  ==========  ========================  =============================================

Example:
    >>> seed32(0, KEPT) == seed32(0, KEPT) != seed32(0, BIAS)
    True
    >>> float(numpy_rng(0, RANDOM_LABELS).random()) == float(numpy_rng(0, RANDOM_LABELS).random())
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch only where a torch generator is asked for (ticketlab.metrics imports this module)
    import torch

MINER = 0x5EED
TIE = 0x71E5
BERNOULLI = 0xBE2
KEPT = 0x6E97
BIAS = 0xB1A5
KEPT_REINIT = 0x2E1
IMP_REINIT = 0x1E1217
RANDOM_LABELS = 0x1AB5
RANDOM_PIXELS = 0x91C5
BATCH_ORDER = 1
DROPOUT = 2
RECALIBRATION = 3
ALIGNED_NULL = 14
RELATIONAL_RANDOM = 26
RELATIONAL_NODES = 27
DEGREE_SELF = 1 << 31

#: Every named stream, name -> value (the table above).
STREAMS: dict[str, int] = {
    "MINER": MINER, "TIE": TIE, "BERNOULLI": BERNOULLI, "KEPT": KEPT, "BIAS": BIAS, "KEPT_REINIT": KEPT_REINIT,
    "IMP_REINIT": IMP_REINIT, "RANDOM_LABELS": RANDOM_LABELS, "RANDOM_PIXELS": RANDOM_PIXELS,
    "BATCH_ORDER": BATCH_ORDER, "DROPOUT": DROPOUT, "RECALIBRATION": RECALIBRATION, "ALIGNED_NULL": ALIGNED_NULL,
    "RELATIONAL_RANDOM": RELATIONAL_RANDOM, "RELATIONAL_NODES": RELATIONAL_NODES, "DEGREE_SELF": DEGREE_SELF,
}


# ------------------------------------------------------------------------------ offset style
def offset_generator(seed: int, stream: int, device: Any = None) -> "torch.Generator":
    """A ``torch.Generator`` seeded with ``seed + stream`` (on ``device``; default the CPU).

    Example:
        >>> import torch
        >>> torch.equal(torch.rand(2, generator=offset_generator(1, TIE)),
        ...             torch.rand(2, generator=torch.Generator().manual_seed(1 + 0x71E5)))
        True
    """
    import torch

    gen = torch.Generator() if device is None else torch.Generator(device=device)
    return gen.manual_seed(seed + stream)


def miner_generators(seed: int) -> tuple["torch.Generator", "torch.Generator"]:
    """A run's miner stream and selection (tie) stream: ``MiningContext.generator`` and
    ``MiningContext.tie_generator`` of the run with ``seed``."""
    return offset_generator(seed, MINER), offset_generator(seed, TIE)


# ------------------------------------------------------------------------------ sequence style
def sequence(seed: int, stream: int, *keys: int) -> np.random.SeedSequence:
    """``numpy.random.SeedSequence([seed, stream, *keys])`` (every word as a Python int)."""
    return np.random.SeedSequence([int(seed), int(stream), *(int(k) for k in keys)])


def numpy_rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A numpy generator of :func:`sequence` ``(seed, stream, *keys)``."""
    return np.random.default_rng(sequence(seed, stream, *keys))


def words_rng(*words: int) -> np.random.Generator:
    """A numpy generator of ``SeedSequence(words)``, for streams whose value is not the second
    word (the relational null's, which end with theirs)."""
    return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))


def seed32(seed: int, stream: int) -> int:
    """The first 32-bit word of :func:`sequence` ``(seed, stream)``: a seed for a model or a generator."""
    return int(sequence(seed, stream).generate_state(1)[0])


def seed63(seed: int, stream: int, *keys: int) -> int:
    """The first 64-bit word of :func:`sequence` ``(seed, stream, *keys)``, shifted to 63 bits
    (a non-negative int64: any torch or model seed)."""
    return int(sequence(seed, stream, *keys).generate_state(1, np.uint64)[0] >> np.uint64(1))


def sequence_generator(seed: int, stream: int) -> "torch.Generator":
    """A CPU ``torch.Generator`` seeded with :func:`seed32` ``(seed, stream)``."""
    import torch

    return torch.Generator().manual_seed(seed32(seed, stream))


__all__ = ["STREAMS", *STREAMS, "miner_generators", "numpy_rng", "offset_generator", "seed32", "seed63", "sequence",
           "sequence_generator", "words_rng"]
