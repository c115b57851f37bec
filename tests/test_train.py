"""``ticketlab train`` / ``ticketlab.train`` (issue 13): the same training as ``mine --train-ticket``
and IMP's rewinding, bit for bit; pruned weights exactly zero; the re-created init equals the
stored one; the source is never modified; one-line refusals."""

import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.errors import ConfigError
from ticketlab.fileformat import load, save
from ticketlab.interop import export_ticket, import_masks
from ticketlab.models import create_model
from ticketlab.retraining import WEIGHTS_CHOICES, parse_weights, rebuild
from ticketlab.ticket import Ticket
from ticketlab.transforms import reinit, reinit_model_seed
from ticketlab.weights import KEPT_ACTIONS

torch.set_num_threads(1)
EPOCHS = 1  # lenet_300_100 on digits: 18 iterations


@pytest.fixture(scope="module")
def snip():
    return ticketlab.mine("snip", density=0.1, seed=0, device="cpu", train_ticket=True, train_epochs=EPOCHS)


def _bare(t: Ticket) -> Ticket:
    """The ticket without any stored weights."""
    return Ticket(masks=t.masks, provenance=t.provenance, scores=t.scores, history=t.history)


def _equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[n], b[n]) for n in a)


def test_equals_mine_train_ticket_and_keeps_pruned_weights_zero(snip):
    trained = ticketlab.train(snip, train_epochs=EPOCHS, device="cpu")
    assert _equal(trained.weights["final"], snip.weights["final"])  # the runner's training, bit for bit
    assert trained.provenance["test_accuracy"] == snip.provenance["test_accuracy"]
    for n, m in trained.masks.items():
        assert np.array_equal(m, snip.masks[n])
        assert not trained.weights["final"][n][~m].any()  # pruned: exactly 0
        assert trained.weights["final"][n][m].any()
    assert _equal(trained.weights["init"], snip.weights["init"])  # kept init: it started at θ0
    rec = trained.provenance["trained_from"]
    assert rec["weights"] == "init" and rec["init"] == "stored" and rec["seed"] == 0
    assert rec["train_config"]["epochs"] == EPOCHS and rec["source_test_accuracy"] == snip.provenance["test_accuracy"]
    assert "file" not in rec  # a Ticket object, not a file
    assert trained.history[-1]["stage"] == "ticket" and trained.history[0]["stage"] == "train"
    assert [r["iteration"] for r in trained.history[:-1]] == [18]
    assert trained.provenance["method"] == "snip" and trained.provenance["trained"] is True


def test_source_ticket_object_is_not_modified(snip):
    before = {n: w.copy() for n, w in snip.weights["init"].items()}
    prov = json.dumps(snip.provenance, sort_keys=True)
    ticketlab.train(snip, weights="random_reshuffle", train_epochs=EPOCHS, device="cpu")
    assert _equal(before, snip.weights["init"]) and json.dumps(snip.provenance, sort_keys=True) == prov


def test_rewind_reproduces_imp_rewinding():
    t = ticketlab.mine("imp", rounds=1, train_epochs=EPOCHS, device="cpu", miner_config={"reset": "rewind:5"})
    trained = ticketlab.train(t, weights="rewind:5", train_epochs=EPOCHS, device="cpu")
    assert _equal(trained.weights["final"], t.weights["final"])  # IMP's last round, bit for bit
    assert trained.provenance["trained_from"]["rewind_iteration"] == 5
    assert _equal(trained.weights["init"], t.weights["init"])  # the run began at θ0
    assert trained.history[-1]["iterations"] == 18
    other = ticketlab.train(t, weights="rewind:6", train_epochs=EPOCHS, device="cpu")
    assert not _equal(other.weights["final"], t.weights["final"])
    with pytest.raises(ConfigError, match=r"rewind:99 is past the end of training \(18 iterations\)"):
        ticketlab.train(t, weights="rewind:99", train_epochs=EPOCHS, device="cpu")


@pytest.mark.parametrize("method, options", [
    ("random", {}),
    ("gem_miner", {"weights": "signed_constant", "score_epochs": 2, "freeze_every": 1}),
    ("edge_popup", {"weights": "scaled_signed_constant", "score_epochs": 2}),
    ("supermask", {"criterion": "large_final", "weights": "signed_std"}),
])
def test_recreated_init_equals_the_stored_one(method, options):
    t = ticketlab.mine(method, density=0.2, seed=3, device="cpu", train_epochs=EPOCHS, miner_config=options)
    rb = rebuild(_bare(t), device="cpu")
    assert rb.source == "recreated"
    assert _equal({n: w.numpy() for n, w in rb.init_weights.items()}, t.weights["init"])
    assert rebuild(t, device="cpu").source == "stored"
    a = ticketlab.train(t, train_epochs=EPOCHS, device="cpu")
    b = ticketlab.train(_bare(t), train_epochs=EPOCHS, device="cpu")
    assert _equal(a.weights["final"], b.weights["final"])
    assert b.provenance["trained_from"]["init"] == "recreated"


def test_kept_actions_use_the_shared_helpers(snip):
    sc = ticketlab.train(snip, weights="signed_constant", train_epochs=EPOCHS, device="cpu")
    w0 = snip.weights["init"]["fc2.weight"]
    assert np.allclose(sc.weights["init"]["fc2.weight"], np.sign(w0) * np.sqrt(2.0 / w0.shape[1]))
    fresh = ticketlab.train(snip, weights="reinit", seed=4, train_epochs=EPOCHS, device="cpu")
    from ticketlab.weights import reinit_draw_seed

    draw = create_model("lenet_300_100", load_spec(), seed=reinit_draw_seed(4))
    assert np.array_equal(fresh.weights["init"]["fc1.weight"], draw.fc1.weight.detach().numpy())
    assert not _equal(fresh.weights["final"], snip.weights["final"])
    with pytest.raises(ConfigError, match="unknown weights action 'bogus'"):
        ticketlab.train(snip, weights="bogus", device="cpu")


def load_spec():
    from ticketlab.data import load_dataset

    return load_dataset("digits", seed=0).spec


def test_reinit_transform_trains_from_its_fresh_draw(snip):
    r = reinit(snip, seed=2)
    trained = ticketlab.train(r, train_epochs=EPOCHS, device="cpu")
    assert trained.provenance["trained_from"]["init"] == "reinit"
    draw = create_model("lenet_300_100", load_spec(), seed=reinit_model_seed(r))
    assert np.array_equal(trained.weights["init"]["fc1.weight"], draw.fc1.weight.detach().numpy())
    assert trained.provenance["transforms"][-1]["name"] == "reinit"


def test_seeds_are_deterministic(snip):
    a = ticketlab.train(snip, seed=1, train_epochs=EPOCHS, device="cpu")
    b = ticketlab.train(snip, seed=1, train_epochs=EPOCHS, device="cpu")
    c = ticketlab.train(snip, seed=2, train_epochs=EPOCHS, device="cpu")
    assert _equal(a.weights["final"], b.weights["final"]) and not _equal(a.weights["final"], c.weights["final"])


def test_trained_again_keeps_the_chain(snip):
    once = ticketlab.train(snip, train_epochs=EPOCHS, device="cpu")
    twice = ticketlab.train(once, train_options={"lr": 1e-4}, train_epochs=EPOCHS, device="cpu")
    rec = twice.provenance["trained_from"]
    assert rec["train_config"]["lr"] == 1e-4 and rec["source_trained_from"]["train_config"]["lr"] == 1.2e-3


def test_refuses_what_the_provenance_cannot_recreate(tmp_path, snip):
    path = export_ticket(snip, tmp_path / "m.npz", "npz")
    with pytest.raises(ConfigError, match=r"^cannot re-create the ticket's network: its provenance has no 'model'"):
        ticketlab.train(import_masks(path), device="cpu")
    on_model = import_masks(path, model="lenet_300_100", dataset="digits")
    with pytest.raises(ConfigError, match="its provenance has no 'seed'"):
        ticketlab.train(on_model, device="cpu")
    save(on_model, tmp_path / "imported.h5")
    res = CliRunner().invoke(cli, ["train", str(tmp_path / "imported.h5"), "-o", str(tmp_path / "o.h5")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "has no 'seed'" in res.output
    assert not (tmp_path / "o.h5").exists()


def test_cli_train_writes_a_new_ticket_and_leaves_the_source_alone(tmp_path, snip):
    src = tmp_path / "a.h5"
    save(snip, src)
    before = src.read_bytes()
    out = tmp_path / "a_trained.h5"
    res = CliRunner().invoke(cli, ["train", str(src), "-o", str(out), "--train-epochs", str(EPOCHS),
                                   "--train-option", "lr=0.002", "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    assert src.read_bytes() == before  # byte for byte
    summary = json.loads(res.output)
    t = load(out)
    rec = t.provenance["trained_from"]
    assert rec["file"] == "a.h5" and rec["sha256"] == hashlib.sha256(before).hexdigest()
    assert rec["train_config"]["lr"] == 0.002 and summary["test_accuracy"] == t.provenance["test_accuracy"]
    assert _equal(t.masks, snip.masks) and set(t.weights) == {"init", "final"}
    res = CliRunner().invoke(cli, ["train", str(src), "-o", str(src)])
    assert res.exit_code == 2 and "would replace its source" in res.output and src.read_bytes() == before
    res = CliRunner().invoke(cli, ["train", str(src), "-o", str(tmp_path / "x.h5"), "--weights", "rewind:x"])
    assert res.exit_code == 2 and "unknown weights action 'rewind:x'" in res.output


def test_kept_choices_and_help():
    from ticketlab.cli.train import WEIGHTS_HELP

    assert all(c in WEIGHTS_HELP for c in WEIGHTS_CHOICES) and set(KEPT_ACTIONS) < set(WEIGHTS_CHOICES)
    assert parse_weights("rewind:0") == ("rewind", 0)
