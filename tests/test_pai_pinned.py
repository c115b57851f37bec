"""Pinned masks of every pruning-at-initialization miner on small fixed cases (issue 15).

Speed work on the miners' scoring and on the shared selection must not change a single mask bit.
Each case below mines on CPU at 1 torch thread and compares a compact fingerprint of the masks
with the value pinned here: the sha256 of, for every parameter in order, its name, its shape and
its mask bits packed with ``numpy.packbits`` (C order), plus the kept count of every parameter.

How the pins were produced: from a pristine copy of the code at git commit 8cfe287 (before the
issue-15 speed work), with

    git worktree add /tmp/tl_head 8cfe287
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/tl_head .venv/bin/python tests/test_pai_pinned.py

which prints the ``PINS`` table below (this file's own ``__main__``). Regenerate only for an
intended change of a miner's masks, and say why in the commit. The pins are float results of
one CPU; a different CPU's vector units could in principle round a score differently.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from ticketlab.mining import mine

# (id, method, model, density, options for mine())
CASES = [
    ("synflow-lenet-global-0.01", "synflow", "lenet_300_100", 0.01, {}),
    ("synflow-lenet-layer-0.1-r10", "synflow", "lenet_300_100", 0.1, {"scope": "layer", "rounds": 10}),
    ("synflow-resnet20-global-0.01", "synflow", "resnet20", 0.01, {}),
    ("synflow-resnet20-global-0.1-f32-r20", "synflow", "resnet20", 0.1,
     {"rounds": 20, "miner_config": {"precision": "float32"}}),
    ("synflow-conv2-layer-0.05-r20", "synflow", "conv2", 0.05, {"scope": "layer", "rounds": 20}),
    ("snip-lenet-global-0.01", "snip", "lenet_300_100", 0.01, {}),
    ("snip-lenet-layer-0.1", "snip", "lenet_300_100", 0.1, {"scope": "layer"}),
    ("snip-resnet20-global-0.1", "snip", "resnet20", 0.1, {}),
    ("snip-conv2-global-0.05-r3", "snip", "conv2", 0.05, {"rounds": 3}),
    ("snip-resnet20-layer-0.01-r3", "snip", "resnet20", 0.01, {"scope": "layer", "rounds": 3}),
    ("grasp-lenet-global-0.1", "grasp", "lenet_300_100", 0.1, {}),
    ("grasp-resnet20-global-0.01", "grasp", "resnet20", 0.01, {}),
    ("grasp-conv2-layer-0.1", "grasp", "conv2", 0.1, {"scope": "layer"}),
    ("magnitude_init-lenet-global-0.01", "magnitude_init", "lenet_300_100", 0.01, {}),
    ("magnitude_init-resnet20-layer-0.1", "magnitude_init", "resnet20", 0.1, {"scope": "layer"}),
    ("random-lenet-global-0.1", "random", "lenet_300_100", 0.1, {}),
    ("random-resnet20-layer-0.01", "random", "resnet20", 0.01, {"scope": "layer"}),
]

# id -> (sha256 of the packed masks, kept count of every parameter in order); see the docstring
PINS: dict[str, tuple[str, tuple[int, ...]]] = {
    "synflow-lenet-global-0.01": (
        "15160d79a3b530a6c63673360862649d7dd0fe8967433ec3a6e2190bd980cea7",
        (181, 141, 180)),
    "synflow-lenet-layer-0.1-r10": (
        "00dd2e1677cf6425ec47830061f4e4a36cd3de4ff926b716575a808b33bcc6b7",
        (1920, 3000, 100)),
    "synflow-resnet20-global-0.01": (
        "81c6c9499bb5c29970c688380bb6f9dd07ffeb6375b56e98facd975f826a8eaa",
        (114, 252, 207, 204, 196, 237, 226, 168, 171, 54, 124, 114, 108, 104, 0, 0, 213, 0, 0, 0, 0, 214)),
    "synflow-resnet20-global-0.1-f32-r20": (
        "681ba5bc7e5c4e3904ddf8e6dcc035bcc385eccac71000a010bb1f205c64061b",
        (141, 1494, 1469, 1496, 1501, 1485, 1508, 1766, 1848, 181, 1738, 1738, 1823, 1768, 996, 994, 570, 940, 943, 998, 1140, 524)),
    "synflow-conv2-layer-0.05-r20": (
        "306efc23919be8e7da188415aaa88ecd68637066567fbcffc248be2819aaadb3",
        (29, 1843, 13107, 3277, 128)),
    "snip-lenet-global-0.01": (
        "b22814b83ce110d2910f2b65ec812a0f6d1798ed821a4302d201d56d18e3725c",
        (178, 152, 172)),
    "snip-lenet-layer-0.1": (
        "1a1a386da35a28123118e431b1d4f3b2b8d93d612bf86a932ebe6ad980c8cc91",
        (1920, 3000, 100)),
    "snip-resnet20-global-0.1": (
        "430b73d0247bcebcc8ef04a93685ed971b1c45d50563f92e8b8a65cbef6a7e41",
        (135, 909, 757, 928, 863, 924, 833, 2419, 2847, 426, 1495, 1571, 1669, 1701, 2672, 3128, 1312, 553, 344, 721, 388, 466)),
    "snip-conv2-global-0.05-r3": (
        "294b0fb5b074969b06ab738e7489a54a4939eff16931a7d86f34863f966a6d43",
        (399, 4812, 9064, 3466, 643)),
    "snip-resnet20-layer-0.01-r3": (
        "5133dc9c54ca2b247f4b84932224f63b9110ebcc9c8ffe1086fbbdeede4320d6",
        (1, 23, 23, 23, 23, 23, 23, 46, 92, 5, 92, 92, 92, 92, 184, 369, 20, 369, 369, 369, 369, 6)),
    "grasp-lenet-global-0.1": (
        "bd235c30f965fe4c39424a08230c2387fc5df175cb6436707bbc6811bcb2c509",
        (3553, 1017, 450)),
    "grasp-resnet20-global-0.01": (
        "8ec9a37b1ef041294887d79cec22cf959428123014332507e0bc265027b87653",
        (105, 147, 132, 227, 212, 210, 151, 317, 172, 194, 30, 36, 27, 12, 41, 7, 416, 0, 0, 0, 0, 270)),
    "grasp-conv2-layer-0.1": (
        "383a425e2f4460c63a241afb89607189383a9936dd275cded5abb66315f2efdf",
        (58, 3686, 26214, 6554, 256)),
    "magnitude_init-lenet-global-0.01": (
        "8e58c57376c5f914b6422a8f25c0fc1f7d48ce706e8b71d77a2a6660005e404f",
        (502, 0, 0)),
    "magnitude_init-resnet20-layer-0.1": (
        "dca3b33d1bad8f56a3ab03028f8d3e87be02d2076da7f26af422124bf9b70493",
        (14, 230, 230, 230, 230, 230, 230, 461, 922, 51, 922, 922, 922, 922, 1843, 3686, 205, 3686, 3686, 3686, 3686, 64)),
    "random-lenet-global-0.1": (
        "7a02d043cdd280705e873e115c9814d39e5d743e19591d801ecb619eeb36d900",
        (1944, 2969, 107)),
    "random-resnet20-layer-0.01": (
        "77e19709511d38255ecdf15b3b5b8b0c20704ff471527167fe5ef18605a8c093",
        (1, 23, 23, 23, 23, 23, 23, 46, 92, 5, 92, 92, 92, 92, 184, 369, 20, 369, 369, 369, 369, 6)),
}


def fingerprint(masks: dict[str, np.ndarray]) -> tuple[str, tuple[int, ...]]:
    """sha256 over (name, shape, packed bits) of every parameter in order, and the kept counts."""
    h = hashlib.sha256()
    for name, m in masks.items():
        m = np.ascontiguousarray(m, dtype=np.bool_)
        h.update(f"{name}:{tuple(m.shape)}:".encode())
        h.update(np.packbits(m.ravel()).tobytes())
    return h.hexdigest(), tuple(int(m.sum()) for m in masks.values())


def _mine(method: str, model: str, density: float, options: dict):
    return mine(method, model=model, dataset="digits", density=density, seed=0, device="cpu",
                omit_weights=True, omit_scores=True, **options)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # float reductions may depend on the thread count; the pins are 1-thread
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_masks_equal_the_pinned_masks(case, one_thread):
    key, method, model, density, options = case
    ticket = _mine(method, model, density, options)
    digest, kept = fingerprint(ticket.masks)
    # issue 21 changed the tie rule (a seeded draw instead of position); these pins did not change
    # because no tie at any round's threshold had to be broken here
    rounds = [r for r in ticket.history if r.get("stage") == "round"]
    assert rounds and all(r["tied_kept"] == 0 for r in rounds), f"{key}: a tie draw chose part of the mask"
    pinned_digest, pinned_kept = PINS[key]
    assert kept == pinned_kept, f"{key}: kept counts per parameter changed"
    assert digest == pinned_digest, f"{key}: the mask bits changed (same counts)"


def test_fingerprint_sees_one_bit_and_the_layout():
    a = {"w": np.array([[True, False], [False, True]])}
    flipped = {"w": np.array([[True, False], [True, False]])}  # same count, one bit moved
    reshaped = {"w": a["w"].reshape(4)}
    renamed = {"v": a["w"]}
    base = fingerprint(a)
    assert base[1] == fingerprint(flipped)[1] == (2,)
    assert len({base[0], fingerprint(flipped)[0], fingerprint(reshaped)[0], fingerprint(renamed)[0]}) == 4


if __name__ == "__main__":  # print the PINS table (see the module docstring)
    torch.set_num_threads(1)
    print("PINS: dict[str, tuple[str, tuple[int, ...]]] = {")
    for key, method, model, density, options in CASES:
        d, k = fingerprint(_mine(method, model, density, options).masks)
        print(f'    "{key}": (\n        "{d}",\n        {k!r}),')
    print("}")
