"""``ticketlab.spec.MineSpec`` (issue 24, first slice): torch-free, hashable by its non-default
fields, the same ticket as the flat keywords, recorded in (and rebuilt from) the provenance."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ticketlab.errors import ConfigError
from ticketlab.spec import MineSpec, NetSpec, PruneSpec, TrainSpec


def test_importable_without_torch():
    code = "import sys, ticketlab.spec as s; s.MineSpec.from_flat('synflow', density=0.1).to_dict(); " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_hash_values_are_pinned():
    """Renaming runs (study jobs, checkpoints) must be deliberate: change these only on purpose."""
    assert MineSpec("synflow").hashname() == "cde6f30e8f4fcc55"
    assert MineSpec.from_flat("synflow", density=0.05, rounds=10, seed=1).hashname() == "b4c60e45c2b86196"
    assert MineSpec.from_flat("imp", model="conv4", dataset="digits", sparsity=0.8,
                              miner_config={"reset": "rewind:20"}, train_options={"lr": 0.01}).hashname() \
        == "b018ad72a6840246"


def test_hash_covers_changed_fields_only():
    base = MineSpec("imp")
    # a method option equal to its default, or a field at its default, does not rename the run
    assert MineSpec("imp", miner={"reset": "init"}).hashname() == base.hashname()
    assert MineSpec("imp", prune=PruneSpec(count_rule="exact"), train=TrainSpec(options={})).hashname() == base.hashname()
    for other in (MineSpec("imp", seed=1), MineSpec("imp", miner={"reset": "reinit"}),
                  MineSpec("imp", net=NetSpec(model="conv4")), MineSpec("imp", prune=PruneSpec(skip_last_layer=True)),
                  MineSpec("imp", train=TrainSpec(options={"lr": 0.1})), MineSpec("random")):
        assert other.hashname() != base.hashname()
    assert hash(MineSpec("imp")) == hash(base)


def test_round_trips():
    spec = MineSpec.from_flat("synflow", sparsity=0.8, rounds=3, schedule=None, rate_multipliers={"output": 0.5},
                              prune_first_layer=False, model_kwargs={"zero_bias": True}, train_epochs=2)
    assert spec.prune.density == 1.0 - 0.8 and spec.prune.skip_first_layer and not spec.prune.skip_last_layer
    assert MineSpec.from_dict(spec.to_dict()) == spec
    assert MineSpec.from_dict(spec.to_dict(changed=True)) == spec
    flat = spec.to_flat()
    assert MineSpec.from_flat(flat.pop("method"), **flat) == spec
    per_layer = MineSpec.from_flat("synflow", schedule=[{"*": 0.8, "output": 0.9}, 0.5])
    assert MineSpec.from_dict(per_layer.to_dict()) == per_layer


def test_bad_specs_are_one_line_errors():
    with pytest.raises(ConfigError, match="'device' is a run-time option, not part of a spec"):
        MineSpec.from_flat("synflow", device="cpu")
    with pytest.raises(ConfigError, match="unknown spec.prune field 'denisty'"):
        MineSpec.from_dict({"method": "synflow", "prune": {"denisty": 0.1}})
    with pytest.raises(ConfigError, match="needs at least a 'method'"):
        MineSpec.from_dict({"seed": 1})
    with pytest.raises(ConfigError, match="density must be in"):
        MineSpec("synflow", prune=PruneSpec(density=1.5)).validate()
    with pytest.raises(ConfigError, match="scope must be one of global, layer"):
        MineSpec("synflow", prune=PruneSpec(scope="both")).validate()
    with pytest.raises(ConfigError):
        MineSpec("synflw").validate()
    MineSpec.from_flat("synflow", density=0.1, seed=3).validate()


def test_mine_spec_and_keywords_give_the_same_ticket_bit_for_bit():
    from ticketlab.mining import mine

    kw = dict(sparsity=0.8, rounds=2, seed=3, miner_config={"reset": "reinit"}, train_epochs=1)
    a = mine("imp", device="cpu", **kw)
    spec = MineSpec.from_flat("imp", **kw)
    b = mine(spec, device="cpu")
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert all(np.array_equal(a.weights[k][n], b.weights[k][n]) for k in a.weights for n in a.weights[k])
    assert a.provenance["spec_hash"] == b.provenance["spec_hash"] == spec.hashname()
    assert MineSpec.from_provenance(b.provenance) == spec
    with pytest.raises(ConfigError, match="'seed' belongs in it"):
        mine(spec, seed=2)


def test_spec_survives_the_file_and_old_files_still_give_one(tmp_path):
    from ticketlab.fileformat import load, save
    from ticketlab.mining import mine

    t = mine("synflow", schedule=[{"*": 0.8, "output": 0.9}, {"*": 0.5, "output": 0.7}], seed=2, device="cpu")
    back = load(save(t, tmp_path / "t.h5"))
    assert MineSpec.from_provenance(back.provenance) == MineSpec.from_provenance(t.provenance)
    old = dict(back.provenance)
    old.pop("spec"), old.pop("spec_hash")
    legacy = MineSpec.from_provenance(old)  # a ticket written before specs were recorded
    assert (legacy.method, legacy.seed, legacy.net.model, legacy.prune.scope) == ("synflow", 2, "lenet_300_100", "layer")


@pytest.mark.parametrize("prov", [
    {},                                                        # nothing at all
    {"method": 3},                                             # no method name
    {"method": "synflow", "seed": "abc"},                      # a seed that is no number
    {"method": "synflow", "method_config": [1, 2]},            # options that are no table
    {"spec": {"method": "synflow", "prune": "dense"}},         # a part that is no table
    {"spec": {"method": "synflow", "net": {"model": 5}}},      # a model that is no name
    {"spec": {"method": "synflow", "seed": [0]}},              # a seed that is no integer
    {"spec": {"method": "synflow", "bogus": 1}},               # an unknown field
    "not a table",
])
def test_a_damaged_or_hostile_provenance_is_one_config_error(prov):
    """A ticket file is untrusted: its provenance's spec reads back as a spec or fails with one line."""
    with pytest.raises(ConfigError, match="does not describe a mining run") as info:
        MineSpec.from_provenance(prov)
    assert "\n" not in str(info.value)
