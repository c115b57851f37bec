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
                              skip_first_layer=True, model_kwargs={"zero_bias": True}, train_epochs=2)
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


# ------------------------------------------------------------------ booleans default to False
def test_mine_and_spec_booleans_default_to_false():
    """STYLE.md §4: every boolean keyword of mine() and every boolean spec field defaults to False."""
    import inspect

    from ticketlab.mining import mine
    from ticketlab.spec import flat_fields

    flags = {n: p.default for n, p in inspect.signature(mine).parameters.items() if isinstance(p.default, bool)}
    assert set(flags) >= {"skip_first_layer", "skip_last_layer", "omit_weights", "omit_scores", "train_ticket"}
    assert set(flags.values()) == {False}
    assert {f.default for f in flat_fields().values() if f.kind is bool} == {False}


def test_old_boolean_keywords_still_work_warn_once_and_give_the_same_ticket():
    import warnings

    from ticketlab.mining import mine

    common = dict(density=0.5, seed=0, device="cpu")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        old = mine("random", prune_last_layer=False, keep_weights=False, keep_scores=False, **common)
    assert [w.category for w in seen] == [DeprecationWarning]  # one warning for the call, naming each keyword
    text = str(seen[0].message)
    assert "prune_last_layer=False (now skip_last_layer=True)" in text and "keep_weights=False (now omit_weights=True)" in text
    assert seen[0].filename == __file__  # it points at the caller's line
    new = mine("random", skip_last_layer=True, omit_weights=True, omit_scores=True, **common)
    assert list(old.masks) == list(new.masks) == ["fc1.weight", "fc2.weight"]  # fc3 (the last) left dense
    assert all(np.array_equal(old.masks[n], new.masks[n]) for n in new.masks)
    assert old.weights == new.weights == {} and old.scores == new.scores == {}
    assert old.provenance["prune_last_layer"] is False and old.provenance["prune_first_layer"] is True  # the file's keys
    assert old.provenance["spec_hash"] == new.provenance["spec_hash"]
    with pytest.warns(DeprecationWarning):
        spec = MineSpec.from_flat("random", prune_first_layer=False)
    assert spec == MineSpec.from_flat("random", skip_first_layer=True)


def test_old_and_new_boolean_keywords_together():
    from ticketlab.mining import mine

    with pytest.raises(ConfigError, match="prune_last_layer=True contradicts skip_last_layer=True"):
        MineSpec.from_flat("random", prune_last_layer=True, skip_last_layer=True)
    with pytest.warns(DeprecationWarning):  # the same meaning twice is fine
        assert MineSpec.from_flat("random", prune_last_layer=False, skip_last_layer=True).prune.skip_last_layer
    with pytest.raises(TypeError, match="unexpected keyword argument 'prune_middle_layer'"):
        mine("random", prune_middle_layer=False)
    spec = MineSpec.from_flat("random", density=0.5)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="'skip_first_layer' belongs in it"):
        mine(spec, prune_first_layer=False)
    with pytest.warns(DeprecationWarning):  # a run-time option under its old name
        assert mine(spec, device="cpu", keep_scores=False).scores == {}


def test_a_study_file_with_the_old_keys_keeps_its_job_names_and_runs_the_new_spec():
    """A study's job name hashes what its file says: `prune_first_layer = false` keeps the name it
    had before the rename (values pinned from the code before it), and runs skip_first_layer=True."""
    from ticketlab.study import StudySpec
    from ticketlab.study.jobs import resolve_jobs

    base = {"name": "t", "model": "lenet_300_100", "dataset": "digits", "seeds": [0], "densities": [0.5],
            "methods": ["random"]}
    for options, pinned in (({"prune_first_layer": False}, "d85aff3947"),
                            ({"prune_last_layer": False, "rounds": 2}, "374c17e7b2")):
        job = resolve_jobs(StudySpec.from_dict({**base, "method": {"random": options}}))[0]
        assert job.hash == pinned
        kwargs = job.mine_kwargs(None)
        assert not set(kwargs) & {"prune_first_layer", "prune_last_layer"}
        new = {"skip_first_layer" if "prune_first_layer" in options else "skip_last_layer": True}
        assert {k: kwargs[k] for k in new} == new
    job = resolve_jobs(StudySpec.from_dict({**base, "method": {"random": {"skip_first_layer": True}}}))[0]
    assert job.mine_kwargs(None)["skip_first_layer"] is True and job.hash != "d85aff3947"  # it says another thing
    with pytest.raises(ConfigError, match="contradicts"):
        StudySpec.from_dict({**base, "method": {"random": {"prune_first_layer": True, "skip_first_layer": True}}})
