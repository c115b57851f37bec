"""compare(): records, registry, files, schema, and invariants over every registered metric."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema  # test extra, installed by `make test`
import numpy as np
import pandas as pd  # test extra, installed by `make test`
import pytest

from ticketlab import fileformat
from ticketlab.errors import ConfigError, IncompatibleError, UnknownNameError
from ticketlab.metrics import (
    COMPARE_SCHEMA, GROUPS, compare, comparison_warnings, default_metrics, get_metric, list_metrics, pairwise_matrix,
    register, ticket_label, unregister, validate_records,
)
from ticketlab.ticket import Ticket
from topologies import residual_topology

TOTAL = "__total__"
TOPOLOGY = residual_topology(2, 4, 3)
SHAPES = {"conv1.weight": (4, 2, 3, 3), "conv2.weight": (4, 4, 3, 3), "fc.weight": (3, 16)}


def full_ticket(seed: int, density: float = 0.5, init_seed: int | None = None) -> Ticket:
    """A small residual ticket with topology, init and final weights."""
    rng = np.random.default_rng(seed)
    irng = np.random.default_rng(seed if init_seed is None else init_seed)
    masks = {n: rng.random(s) < density for n, s in SHAPES.items()}
    init = {n: irng.standard_normal(s) for n, s in SHAPES.items()}
    final = {n: (w + 0.5 * rng.standard_normal(w.shape)) * masks[n] for n, w in init.items()}
    return Ticket(masks=masks, provenance={"topology": TOPOLOGY, "seed": seed, "model": "tiny"},
                  weights={"init": init, "final": final})


# ----------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("name", list_metrics())
def test_every_metric_gives_schema_valid_json_records(name):
    a, b = full_ticket(1), full_ticket(2, density=0.3)
    recs = compare([a, b], [name], per_layer=True)
    assert recs, name
    validate_records(json.loads(json.dumps(recs, allow_nan=False)))
    assert all(r["metric"] == name for r in recs)
    assert {r["layer"] for r in recs} >= {TOTAL} or get_metric(name).name == "allocation"


@pytest.mark.parametrize("name", list_metrics(kind="pair"))
def test_pair_metrics_on_identical_tickets_and_symmetry(name):
    m = get_metric(name)
    a, b = full_ticket(3), full_ticket(4, density=0.35)
    same = compare([a, full_ticket(3)], [name])
    total = [r for r in same if r["a"] == "ticket0"][0]["value"]
    if m.orientation == "similarity":
        assert total == pytest.approx(1.0)
    elif m.orientation == "distance":
        assert total == pytest.approx(0.0)
    if m.symmetric:
        ab = compare([a, b], [name])[0]["value"]
        ba = compare([b, a], [name])[0]["value"]
        assert ab == pytest.approx(ba)
    else:
        assert {(r["a"], r["b"]) for r in compare([a, b], [name])} == {("ticket0", "ticket1"), ("ticket1", "ticket0")}


@pytest.mark.parametrize("name", list_metrics(kind="single"))
def test_single_metrics_are_deterministic(name):
    assert compare([full_ticket(5)], [name], per_layer=True) == compare([full_ticket(5)], [name], per_layer=True)


def test_chance_fields_present_on_overlap_records():
    recs = compare([full_ticket(1), full_ticket(2)], ["overlap"], per_layer=True)
    for r in recs:
        keys = set(r)
        if r["layer"] == TOTAL:
            assert {"expected", "z", "p", "p_two_sided", "expected_global", "z_global", "p_global"} <= keys
        elif r["layer"] in ("__mean__", "__wmean__"):
            assert "expected" in keys and "p" not in keys
        else:
            assert {"expected", "z", "p", "p_two_sided"} <= keys and "p_global" not in keys


# ----------------------------------------------------------------------------- compare API
def test_defaults_are_mask_only_families():
    assert {get_metric(n).group for n in default_metrics()} == {"overlap", "units", "sparsity"}
    recs = compare([full_ticket(1), full_ticket(2)])
    assert {r["metric"] for r in recs} == set(default_metrics()) - {"allocation"}  # allocation: per layer only


def test_groups_and_unknown_names():
    recs = compare([full_ticket(1), full_ticket(2)], ["signs", "jaccard"])
    assert [r["metric"] for r in recs][:1] == ["sign_kept"] and recs[-1]["metric"] == "jaccard"
    with pytest.raises(UnknownNameError, match="unknown metric 'jacard': did you mean 'jaccard'.*or a group: overlap"):
        compare([full_ticket(1), full_ticket(2)], ["jacard"])
    with pytest.raises(UnknownNameError, match="did you mean 'overlap'"):  # groups are suggested too
        compare([full_ticket(1), full_ticket(2)], ["overlpa"])
    variants = compare([full_ticket(1), full_ticket(2)], ["Jaccard", "SIGNS"])  # case and hyphens: the one name
    assert [r["metric"] for r in variants] == [r["metric"] for r in compare([full_ticket(1), full_ticket(2)],
                                                                            ["jaccard", "signs"])]


def test_incompatible_architectures_name_the_first_difference():
    a = full_ticket(1)
    b = Ticket(masks={"conv1.weight": np.ones((4, 2, 3, 3), bool), "conv2.weight": np.ones((8, 4, 3, 3), bool),
                      "fc.weight": np.ones((3, 16), bool)})
    with pytest.raises(IncompatibleError) as err:
        compare([a, b], ["jaccard"], labels=["resnet.h5", "other.h5"])
    msg = str(err.value)
    assert msg == ("tickets 'resnet.h5' and 'other.h5' differ at parameter 'conv2.weight' (shape (4, 4, 3, 3) "
                   "vs (8, 4, 3, 3)); compare the shared parameters with common_only (--common-only)")
    assert "\n" not in msg
    recs = compare([a, b], ["jaccard"], common_only=True, per_layer=True)
    assert [r["layer"] for r in recs][3:] == ["conv1.weight", "fc.weight"]
    mlp = Ticket(masks={"fc1.weight": np.ones((3, 4), bool)})
    with pytest.raises(IncompatibleError, match="'conv1.weight' vs 'fc1.weight'"):
        compare([a, mlp])
    with pytest.raises(IncompatibleError, match="share no parameter"):
        compare([a, mlp], common_only=True)


def test_labels():
    a, b = full_ticket(1), full_ticket(2)
    assert compare([a, b], ["dice"], labels=["x", "y"])[0]["a"] == "x"
    with pytest.raises(ConfigError, match="used twice"):
        compare([a, b], ["dice"], labels=["x", "x"])
    with pytest.raises(ConfigError, match="got 1 labels for 2 tickets"):
        compare([a, b], ["dice"], labels=["x"])
    with pytest.raises(ConfigError, match="pair metrics need at least two tickets"):
        compare([a], ["dice"])


def test_default_labels_come_from_provenance_and_labels_still_win():
    def t(method, seed, kept, **prov):
        return Ticket(masks={"w": np.arange(8) < kept}, provenance={"method": method, "seed": seed, **prov})

    ts = [t("synflow", 0, 2), t("snip", 1, 4), t("synflow", 0, 2), Ticket(masks={"w": np.arange(8) < 3})]
    recs = compare(ts, ["jaccard"])
    assert list(dict.fromkeys(r["a"] for r in recs)) == ["synflow s0 d0.25", "snip s1 d0.5", "synflow s0 d0.25#2"]
    assert recs[-1]["b"] == "ticket3"  # no method named: the position
    assert ticket_label(t("imp", True, 1)) == "imp d0.125"  # a seed that is not an integer is left out
    assert compare(ts[:2], ["jaccard"], labels=["x", "y"])[0]["a"] == "x"
    assert pairwise_matrix(ts[:2], "jaccard").labels == ["synflow s0 d0.25", "snip s1 d0.5"]


def test_comparison_warnings_for_densities_models_and_data_sets():
    def t(kept, **prov):
        return Ticket(masks={"w": np.arange(20) < kept, "v": np.zeros(5, bool)}, provenance=prov)

    same = [t(4, model="m", dataset="d"), t(6, model="m", dataset="d")]  # 0.16 and 0.24: a factor of 1.5
    assert comparison_warnings(same, ["a", "b"]) == []
    (line,) = comparison_warnings([t(4), t(7)], ["a", "b"])  # 0.16 and 0.28: above 1.5
    assert line.startswith("the tickets' densities differ by a factor of 1.75 (0.16 for 'a' to 0.28 for 'b')")
    assert "read the lift, z or kappa" in line
    (line,) = comparison_warnings([t(0), t(2)], ["a", "b"])
    assert "more than any factor" in line
    assert comparison_warnings([t(0), t(0)], ["a", "b"]) == []
    lines = comparison_warnings([t(4, dataset="digits"), t(4, dataset="mnist5k", model="m"), t(4)],
                                ["a", "b", "c"])  # a ticket that names no data set is left out
    assert lines == ["the tickets differ in data set (digits: 'a'; mnist5k: 'b'): the same parameter names need "
                     "not select comparable weights (compared: w, v)"]
    five = [t(4, model=f"m{i % 2}") for i in range(5)]
    (line,) = comparison_warnings(five, list("abcde"))
    assert "model (m0: 'a', 'c', 'e'; m1: 'b', 'd')" in line


def test_file_paths_load_masks_only_unless_weights_are_needed(tmp_path, monkeypatch):
    pa, pb = tmp_path / "a.h5", tmp_path / "b.h5"
    fileformat.save(full_ticket(1), pa)
    fileformat.save(full_ticket(2), pb)
    calls = []
    real = fileformat.load
    monkeypatch.setattr(fileformat, "load", lambda p, **kw: calls.append(kw) or real(p, **kw))
    recs = compare([str(pa), pb], ["jaccard"])
    assert recs[0]["a"] == str(pa) and recs[0]["b"] == str(pb)
    assert recs[0]["value"] == compare([full_ticket(1), full_ticket(2)], ["jaccard"])[0]["value"]
    assert [c["weights"] for c in calls] == [False, False]
    compare([pa, pb], ["sign_agree_init"])
    assert [c["weights"] for c in calls[2:]] == [True, True]


def test_records_are_flat_and_load_into_a_dataframe():
    recs = compare([full_ticket(1), full_ticket(2), full_ticket(3)], ["jaccard", "density"], per_layer=True)
    assert all(isinstance(v, (str, float, int, type(None))) for r in recs for v in r.values())
    assert len([r for r in recs if r["metric"] == "jaccard"]) == 3 * (3 + 3)  # 3 pairs x (total, 2 means, 3 layers)
    df = pd.DataFrame(recs)
    assert set(df.columns) >= {"a", "b", "metric", "layer", "value", "expected", "z", "p"}


# ----------------------------------------------------------------------------- registry
def test_user_metric_works_in_compare():
    @register("test_kept_ratio", description="kept(a) / kept(b)", symmetric=False)
    def kept_ratio(a, b):
        return a.kept / b.kept

    @register("test_per_layer_sum", kind="single")
    def per_layer_sum(t):
        return {TOTAL: {"value": t.kept, "note": "sum"}, **{n: int(m.sum()) for n, m in t.masks.items()}}

    try:
        a, b = full_ticket(1), full_ticket(2)
        recs = compare([a, b], ["test_kept_ratio", "test_per_layer_sum"], per_layer=True)
        assert recs[0] == {"a": "ticket0", "b": "ticket1", "metric": "test_kept_ratio", "layer": TOTAL,
                           "value": pytest.approx(a.kept / b.kept)}
        assert recs[1]["a"] == "ticket1" and recs[1]["value"] == pytest.approx(b.kept / a.kept)
        sums = [r for r in recs if r["metric"] == "test_per_layer_sum" and r["a"] == "ticket0"]
        assert sums[0]["note"] == "sum" and [r["value"] for r in sums[1:]] == [float(m.sum()) for m in a.masks.values()]
        assert "test_kept_ratio" in list_metrics(group="custom")
        validate_records(recs)
        with pytest.raises(ConfigError, match="already registered"):
            register("test_kept_ratio")(kept_ratio)
    finally:
        unregister("test_kept_ratio")
        unregister("test_per_layer_sum")
    assert "test_kept_ratio" not in list_metrics()


def test_registration_errors():
    with pytest.raises(ConfigError, match="is a metric group name"):
        register("overlap")(lambda a, b: 0.0)
    with pytest.raises(ConfigError, match="names a chance matrix"):
        register("lift")(lambda a, b: 0.0)
    with pytest.raises(ConfigError, match="unknown metric group"):
        register("x_metric", group="nope")
    with pytest.raises(ConfigError, match="metric kind"):
        register("x_metric", kind="triple")
    with pytest.raises(ConfigError, match="unknown metric need"):
        register("x_metric", needs=["gpu"])

    @register("test_bad_fields")
    def bad(a, b):
        return {TOTAL: {"value": 1.0, "confidence": 0.3}}

    try:
        with pytest.raises(ConfigError, match="returned unknown field 'confidence'"):
            compare([full_ticket(1), full_ticket(2)], ["test_bad_fields"])
    finally:
        unregister("test_bad_fields")
    assert set(GROUPS) >= {get_metric(n).group for n in list_metrics()}


# ----------------------------------------------------------------------------- schema
def test_schema_rejects_bad_documents():
    good = {"a": "x", "b": None, "metric": "m", "layer": TOTAL, "value": 0.5}
    validate_records([good])
    for bad, why in [
        ({k: v for k, v in good.items() if k != "value"}, "required key 'value'"),
        ({**good, "value": "high"}, "not of type number or null"),
        ({**good, "extra": 1}, "unexpected key 'extra'"),
        ({**good, "p": 1.5}, "above the maximum"),
        ({**good, "z": float("nan")}, "not a JSON number"),
        ({**good, "a": ""}, "shorter than 1"),
        ({**good, "b": 3}, "not of type string or null"),
    ]:
        with pytest.raises(ValueError, match=why):
            validate_records([bad])
    with pytest.raises(ValueError, match="not of type array"):
        validate_records(good)
    assert COMPARE_SCHEMA["items"]["required"] == ["a", "b", "metric", "layer", "value"]


def test_schema_matches_jsonschema():
    recs = compare([full_ticket(1), full_ticket(2)], "all", per_layer=True)
    jsonschema.validate(json.loads(json.dumps(recs)), COMPARE_SCHEMA)


# ----------------------------------------------------------------------------- no torch
def test_metrics_never_import_torch(tmp_path):
    code = f"""
import sys, numpy as np
import ticketlab, ticketlab.metrics as M
from ticketlab.ticket import Ticket
rng = np.random.default_rng(0)
ts = [Ticket(masks={{"a": rng.random((4, 2, 3, 3)) < .5, "b": rng.random((3, 16)) < .5}},
             weights={{"init": {{"a": rng.random((4, 2, 3, 3)), "b": rng.random((3, 16))}}}}) for _ in range(3)]
recs = ticketlab.compare(ts, "all", per_layer=True)
m = M.pairwise_matrix(ts, "jaccard"); m.order(); m.embedding(); m.plot(r"{tmp_path / 'h.png'}")
M.plot_profiles(ts, r"{tmp_path / 'p.png'}")
assert recs
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
