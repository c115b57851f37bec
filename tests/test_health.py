"""ticketlab.health: collapsed layers, unreachable classes, off-path share and the chance band,
on tiny tickets computed by hand; the record stored by mine; the CLI's one-line warning."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.metrics.health import Health, chance_band, health
from ticketlab.ticket import Ticket


def mlp_topology(widths: list[int], identity: tuple[str, str] | None = None) -> dict:
    """A chain input -> t1 -> ... with one linear edge ``fc<i>`` per layer (plus an identity edge)."""
    names = ["input", *[f"t{i}" for i in range(1, len(widths))]]
    edges = [{"param": f"fc{i}", "src": names[i - 1], "dst": names[i], "kind": "linear", "group": 1}
             for i in range(1, len(widths))]
    if identity:
        edges.append({"identity": True, "src": identity[0], "dst": identity[1]})
    return {"tensors": dict(zip(names, widths)), "edges": edges, "input": "input", "output": names[-1]}


def mlp(fc1, fc2, **prov) -> Ticket:
    """A 2-3-2 MLP: ``fc1`` is (3, 2), ``fc2`` (2, 3); rows are destination units."""
    return Ticket(masks={"fc1": np.array(fc1, bool), "fc2": np.array(fc2, bool)},
                  provenance={"topology": mlp_topology([2, 3, 2]), **prov})


def test_an_empty_class_row_makes_that_class_unreachable():
    h = health(mlp(np.ones((3, 2)), [[1, 1, 1], [0, 0, 0]]))
    assert h.topology and h.classes == 2 and h.unreachable_classes == (1,)
    assert h.collapsed_layers == ()
    assert (h.kept, h.effective, h.off_path_share) == (9, 9, 0.0)  # every kept weight still on a path to class 0
    assert h.status == "unhealthy" and h.healthy is False
    assert h.reasons == ("1 of 2 classes have no input-to-output path (class 1)",)


def test_off_path_share_by_hand():
    # hidden unit 2 receives nothing (fc1 row 2 empty): its two outgoing weights in fc2 are off every path
    h = health(mlp([[1, 1], [1, 1], [0, 0]], np.ones((2, 3))))
    assert (h.kept, h.effective) == (4 + 6, 4 + 4)
    assert h.off_path_share == pytest.approx(2 / 10)
    assert h.unreachable_classes == () and h.collapsed_layers == ()
    assert h.status == "healthy" and h.healthy is True  # a share off-path alone is not a problem
    assert h.summary() == ("healthy: no collapsed layer, all 2 classes reachable, 20.0% of the kept weights off every "
                           "input-to-output path")


def test_collapsed_layers_that_still_keep_weights():
    # fc1 feeds only hidden unit 0, fc2 reads only hidden unit 1: both layers keep weights, none is effective
    h = health(mlp([[1, 1], [0, 0], [0, 0]], [[0, 1, 0], [0, 1, 0]]))
    assert h.collapsed_layers == ("fc1", "fc2") and h.layers == 2
    assert h.unreachable_classes == (0, 1)
    assert (h.kept, h.effective, h.off_path_share) == (4, 0, 1.0)
    assert h.summary() == ("unhealthy ticket: collapsed: 2 of 2 layers have no effective weight (fc1, fc2); "
                           "none of the 2 classes has an input-to-output path; 100% of the kept weights lie off "
                           "every such path")
    prov = {"test_accuracy": 0.5, "data_spec": {"num_classes": 2, "split_samples": {"test": 10}}}
    h = health(mlp([[1, 1], [0, 0], [0, 0]], [[0, 1, 0], [0, 1, 0]], **prov))  # 5 of 10 on 2 classes: chance
    assert h.summary().endswith("100% of the kept weights lie off every such path; test accuracy 0.5 is at chance "
                                "(within the 99% binomial band 0.1-0.9 of 1/2 on 10 samples)")


def test_a_collapsed_layer_is_reported_even_when_a_shortcut_keeps_the_classes_reachable():
    topo = mlp_topology([3, 3, 3], identity=("input", "t2"))
    t = Ticket(masks={"fc1": np.ones((3, 3), bool), "fc2": np.zeros((3, 3), bool)}, provenance={"topology": topo})
    h = health(t)
    assert h.unreachable_classes == ()  # the identity edge reaches every class
    assert h.collapsed_layers == ("fc1", "fc2")  # fc1's weights lead nowhere once fc2 is empty
    assert h.healthy is False


def test_chance_band_edges_by_hand():
    n, p = 360, 0.1  # 10 classes, 360 test samples
    cdf = np.cumsum([math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)])
    lo = int(np.argmax(cdf >= 0.005))
    hi = int(np.argmax(cdf >= 0.995))
    assert (lo, hi) == (22, 51)  # by hand: P(X <= 21) = 0.0034 < 0.005 <= P(X <= 22) = 0.0061, and so on
    assert cdf[21] < 0.005 <= cdf[22] and cdf[50] < 0.995 <= cdf[51]
    assert chance_band(10, 360) == (22, 51)
    assert cdf[51] - cdf[21] >= 0.99  # the band holds at least 99 % of a guessing network's scores
    prov = {"data_spec": {"num_classes": 10, "split_samples": {"test": 360}}}
    t = mlp(np.ones((3, 2)), np.ones((2, 3)), **prov)  # structurally sound: only the accuracy decides
    for correct, at_chance in ((21, False), (22, True), (36, True), (51, True), (52, False)):
        h = health(Ticket(masks=t.masks, provenance={**t.provenance, "test_accuracy": correct / 360}))
        assert h.at_chance is at_chance, correct
        assert h.healthy is (not at_chance)
    h = health(Ticket(masks=t.masks, provenance={**t.provenance, "test_accuracy": 0.1}))
    assert h.reasons == ("test accuracy 0.1 is at chance (within the 99% binomial band 0.06111-0.1417 of 1/10 "
                         "on 360 samples)",)
    assert h.to_dict()["accuracy"] == {"value": 0.1, "source": "test_accuracy", "split": "test", "samples": 360,
                                       "chance": 0.1, "band": [22 / 360, 51 / 360], "at_chance": True}


def test_accuracy_sources_and_unknown_sample_counts():
    base = mlp(np.ones((3, 2)), np.ones((2, 3)), data_spec={"num_classes": 2, "split_samples": {"val": 100}})
    # untrained learned mask: the last round row's untrained test accuracy; no test size: not checked
    t = Ticket(masks=base.masks, provenance=base.provenance,
               history=[{"stage": "round", "round": 1, "untrained_test_accuracy": 0.5}])
    h = health(t)
    assert (h.accuracy, h.accuracy_source, h.samples, h.at_chance) == (0.5, "untrained_test_accuracy", None, None)
    assert h.status == "healthy"
    # a measured accuracy on a split whose size is recorded: 50 of 100 on 2 classes is chance
    h = health(base, accuracy=0.5, split="val")
    assert (h.accuracy_source, h.samples, h.at_chance, h.healthy) == ("given", 100, True, False)
    assert health(base, accuracy=0.95, split="val").healthy is True


def test_without_a_topology_health_is_unknown_unless_a_layer_is_empty():
    t = Ticket(masks={"fc1": np.ones((3, 2), bool), "fc2": np.array([[1, 1, 1], [0, 0, 0]], bool)})
    h = health(t)
    assert h.status == "unknown" and h.healthy is None  # an empty class row, but no wiring to say so
    assert h.unreachable_classes is None and h.effective is None and h.off_path_share is None
    assert h.summary().startswith("health unknown: the ticket records no topology")
    empty = health(Ticket(masks={"fc1": np.ones((3, 2), bool), "fc2": np.zeros((2, 3), bool)}))
    assert empty.status == "unhealthy" and empty.collapsed_layers == ("fc2",)
    assert empty.reasons == ("collapsed: 1 of 2 layers keep no weight (fc2)",)


def test_record_is_json_and_the_dataclass_is_frozen():
    h = health(mlp(np.ones((3, 2)), [[1, 1, 1], [0, 0, 0]]))
    rec = h.to_dict()
    assert json.loads(json.dumps(rec, allow_nan=False)) == rec
    assert rec["status"] == "unhealthy" and rec["unreachable_classes"] == [1] and rec["accuracy"] is None
    assert rec["summary"] == h.summary()
    with pytest.raises(AttributeError):
        h.kept = 0  # type: ignore[misc]
    assert isinstance(h, Health) and ticketlab.health is health


def test_health_does_not_import_torch():
    code = ("import sys, numpy as np, ticketlab\n"
            "from ticketlab.ticket import Ticket\n"
            "h = ticketlab.health(Ticket(masks={'w': np.zeros((2, 2), bool)}))\n"
            "assert h.status == 'unhealthy', h\n"
            "assert 'torch' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_mine_records_health_and_warns_in_one_line(tmp_path):
    out = tmp_path / "mi.h5"
    res = CliRunner().invoke(cli, ["mine", "--method", "magnitude_init", "--sparsity", "0.99", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {out}: unhealthy ticket: collapsed: 3 of 3 layers have no effective weight "
                        "(fc1.weight, fc2.weight, fc3.weight); none of the 10 classes has an input-to-output path; "
                        "100% of the kept weights lie off every such path"]
    t = ticketlab.load(out)
    assert t.provenance["health"] == health(t).to_dict()
    assert t.provenance["health"]["collapsed_layers"] == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert t.provenance["health"]["accuracy"] is None  # mined untrained: no accuracy to check
    res = CliRunner().invoke(cli, ["inspect", str(out)])
    assert res.exit_code == 0 and res.stderr.count("warning:") == 1 and "collapsed: 3 of 3" in res.stderr
    info = json.loads(CliRunner().invoke(cli, ["inspect", str(out), "--json"]).stdout)
    assert info["health"]["status"] == "unhealthy"


def test_a_healthy_ticket_gives_no_warning_and_records_its_split_sizes(tmp_path):
    out = tmp_path / "s.h5"
    res = CliRunner().invoke(cli, ["mine", "--method", "snip", "--density", "0.2", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr
    t = ticketlab.load(out)
    assert t.provenance["data_spec"]["split_samples"] == {"train": 1079, "val": 359, "test": 359}  # digits
    assert t.provenance["health"]["status"] == "healthy"
    res = CliRunner().invoke(cli, ["inspect", str(out)])
    assert res.exit_code == 0 and "warning" not in res.stderr and "healthy: no collapsed layer" in res.stdout


def test_compare_notes_an_unhealthy_input_in_one_line_and_a_json_field(tmp_path):
    topo = mlp_topology([2, 3, 2])
    sick = tmp_path / "sick.h5"
    well = tmp_path / "well.h5"
    ticketlab.save(Ticket(masks={"fc1": np.ones((3, 2), bool), "fc2": np.array([[1, 1, 1], [0, 0, 0]], bool)},
                          provenance={"topology": topo}), sick)
    ticketlab.save(Ticket(masks={"fc1": np.ones((3, 2), bool), "fc2": np.ones((2, 3), bool)},
                          provenance={"topology": topo}), well)
    res = CliRunner().invoke(cli, ["compare", str(sick), str(well), "--metric", "jaccard", "--json"])
    assert res.exit_code == 0, res.output
    want = "unhealthy ticket: 1 of 2 classes have no input-to-output path (class 1)"
    assert res.stderr.splitlines() == [f"warning: sick.h5: {want}"]
    (rec,) = json.loads(res.stdout)
    assert rec["health_a"] == want and "health_b" not in rec  # the healthy ticket gets no field
    from ticketlab.metrics import validate_records

    validate_records([rec])  # health_a is in the schema (additionalProperties is false)
    res = CliRunner().invoke(cli, ["compare", str(well), str(sick), "--matrix", "jaccard"])
    assert res.exit_code == 0 and res.stderr.splitlines() == [f"warning: sick.h5: {want}"]


def test_train_and_evaluate_store_health_and_warn_in_one_line(tmp_path):
    src, out = tmp_path / "mi.h5", tmp_path / "mi_trained.h5"
    ticketlab.save(ticketlab.mine("magnitude_init", density=0.01, seed=0, device="cpu"), src)
    res = CliRunner().invoke(cli, ["train", str(src), "-o", str(out), "--train-epochs", "1", "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    (line,) = [x for x in res.stderr.splitlines() if x.startswith("warning:")]
    assert line.startswith(f"warning: {out}: unhealthy ticket: collapsed: 3 of 3 layers")
    t = ticketlab.load(out)
    rec = t.provenance["health"]
    assert rec == health(t).to_dict() and rec["accuracy"]["samples"] == 359  # digits' test split
    assert rec["accuracy"]["value"] == t.provenance["test_accuracy"] and rec["accuracy"]["source"] == "test_accuracy"
    res = CliRunner().invoke(cli, ["evaluate", str(src), "--split", "val", "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    acc = result["health"]["accuracy"]
    assert (acc["source"], acc["split"], acc["samples"], acc["value"]) == ("given", "val", 359, result["accuracy"])
    assert res.stderr.count("warning:") == 1 and "none of the 10 classes" in res.stderr
