"""Loss barrier between trained tickets (ticketlab.metrics.barrier, issue 14 section 4): the trained
state stored in ``final``; a ticket with itself has barrier exactly 0; α = 0 and 1 are the trained
networks themselves; the union mask on a hand-made pair; batch-norm re-estimation; alignment of a
relabelled copy; the CLI; one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli
from ticketlab.data import load_dataset
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.fileformat import load, save
from ticketlab.metrics.align import permute_state, permute_ticket, unit_groups
from ticketlab.metrics.barrier import BarrierResult, alpha_grid, barrier, interpolate_state, plot_barrier, union_masks
from ticketlab.models import create_model
from ticketlab.retraining import trained_state
from ticketlab.ticket import Ticket
from ticketlab.training import evaluate_model, recalibrate_batchnorm

torch.set_num_threads(1)
RESNET = {"width": 4}  # resnet20 with 4-channel stages: batch norm and residuals, tiny


@pytest.fixture(scope="module")
def snip():
    """lenet_300_100 on digits, trained 1 epoch (18 iterations) under its SNIP mask."""
    return ticketlab.mine("snip", density=0.1, seed=0, device="cpu", train_ticket=True, train_epochs=1)


@pytest.fixture(scope="module")
def snip_b(snip):
    """The same ticket trained with another seed (other batch order): the same data split."""
    return ticketlab.train(snip, seed=1, train_epochs=1, device="cpu")


@pytest.fixture(scope="module")
def bn():
    return ticketlab.mine("random", model="resnet20", model_kwargs=RESNET, density=0.5, seed=0, device="cpu",
                          train_ticket=True, train_epochs=1)


def _net(t: Ticket, state: dict) -> torch.nn.Module:
    """The ticket's model holding ``state`` (built here, independently of barrier)."""
    prov = t.provenance
    net = create_model(prov["model"], load_dataset(prov["dataset"], seed=prov["seed"]).spec, seed=0,
                       **prov["model_config"])
    net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
    return net


def _data(t: Ticket):
    return load_dataset(t.provenance["dataset"], seed=t.provenance["seed"])


def _old(t: Ticket) -> Ticket:
    """``t`` as an older ticketlab wrote it: ``final`` holds the masked parameters only."""
    final = {n: t.weights["final"][n] for n in t.masks}
    return Ticket(masks=t.masks, provenance=t.provenance, weights={"init": t.weights["init"], "final": final})


# --------------------------------------------------------------------- the trained state
def test_final_holds_the_whole_trained_state(snip, snip_b, bn):
    for t in (snip, snip_b):  # mine --train-ticket and ticketlab train
        # the state dict's order (biases after their layer: what align.permute_state relies on)
        assert list(t.weights["final"]) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight",
                                            "fc3.bias"]
    net = _net(snip, snip.weights["final"])
    assert evaluate_model(net, _data(snip), "test")[1] == snip.provenance["test_accuracy"]  # the trained network, exactly
    state = bn.weights["final"]
    assert state["bn1.running_var"].dtype == np.float32 and state["bn1.num_batches_tracked"].shape == ()
    assert set(state) == set(create_model("resnet20", _data(bn).spec, **RESNET).state_dict())


def test_imp_rounds_store_their_trained_state(tmp_path):
    t = ticketlab.mine("imp", rounds=2, train_epochs=1, device="cpu", save_rounds=tmp_path,
                       miner_config={"reset": "rewind:2"})
    r1, r2 = load(tmp_path / "round_01.h5"), load(tmp_path / "round_02.h5")
    assert "fc1.bias" in r1.weights["final"] and all(np.array_equal(r2.weights["final"][k], v)
                                                     for k, v in t.weights["final"].items())
    res = barrier(tmp_path / "round_01.h5", tmp_path / "round_02.h5", alphas=3, device="cpu")
    assert res.error[0] == 1 - r1.provenance["test_accuracy"] and res.error[-1] == 1 - r2.provenance["test_accuracy"]
    assert res.union_density == r1.density  # IMP's masks only shrink: the union is the earlier one


# ------------------------------------------------------------------ exact invariants
def test_alpha_grid_and_interpolation_by_hand():
    assert alpha_grid(3) == [0.0, 0.5, 1.0] and alpha_grid(11)[3] == 0.3
    assert alpha_grid([0.75, 0.25, 0.25]) == [0.0, 0.25, 0.75, 1.0]
    for bad in (1, True, [1.5], [-0.1], "3", [float("nan")]):
        with pytest.raises(ConfigError):
            alpha_grid(bad)
    a = {"w": torch.tensor([1.0, 0.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([0.0, 2.0, 3.0]), "n": torch.tensor(9)}
    assert interpolate_state(a, b, 0.25)["w"].tolist() == [0.75, 0.5, 3.0]
    assert interpolate_state(a, b, 0.0)["w"].tolist() == [1.0, 0.0, 3.0] and int(interpolate_state(a, b, 0.0)["n"]) == 4
    assert interpolate_state(a, b, 1.0)["w"].tolist() == [0.0, 2.0, 3.0] and int(interpolate_state(a, b, 1.0)["n"]) == 9
    u = union_masks({"w": np.array([1, 0, 0, 1], bool), "v": np.ones(2, bool)}, {"w": np.array([0, 1, 0, 1], bool)})
    assert list(u) == ["w"] and u["w"].tolist() == [True, True, False, True]  # 'v' is dense in B: no mask


def test_barrier_of_a_ticket_with_itself_is_exactly_zero(snip, bn):
    for t in (snip, bn):  # without and with batch-norm re-estimation
        res = barrier(t, t, alphas=5, device="cpu")
        assert res.barrier == 0.0 and res.loss_barrier == 0.0
        assert len(set(res.error)) == 1 and len(set(res.loss)) == 1


def test_endpoints_are_the_trained_networks(snip, snip_b):
    res = barrier(snip, snip_b, alphas=4, device="cpu")
    data = _data(snip)
    for t, err, loss in ((snip, res.error[0], res.loss[0]), (snip_b, res.error[-1], res.loss[-1])):
        direct_loss, direct_acc = evaluate_model(_net(t, t.weights["final"]), data, "test")
        assert (err, loss) == (1 - direct_acc, direct_loss)
        assert err == 1 - t.provenance["test_accuracy"]
    assert res.barrier == max(res.error) - (res.error[0] + res.error[-1]) / 2 >= 0
    assert res.loss_barrier == max(res.loss) - (res.loss[0] + res.loss[-1]) / 2
    assert not res.batchnorm and res.recalibration_batches == 0 and res.alphas == alpha_grid(4)


def test_union_mask_on_a_hand_made_pair(snip):
    """A keeps every other weight of the SNIP ticket, B the rest, with biases doubled: at α = 1/2
    the network is the SNIP ticket's weights halved on the union and 1.5 times A's biases."""
    final = snip.weights["final"]
    masks_a, masks_b, wa, wb = {}, {}, {}, {}
    for n, m in snip.masks.items():
        alt = (np.arange(m.size).reshape(m.shape) % 2 == 0)
        masks_a[n], masks_b[n] = m & alt, m & ~alt
        wa[n], wb[n] = final[n] * masks_a[n], final[n] * masks_b[n]
    biases = {k: v for k, v in final.items() if k not in snip.masks}
    a = Ticket(masks=masks_a, provenance=snip.provenance, weights={"final": {**wa, **biases}})
    b = Ticket(masks=masks_b, provenance=snip.provenance, weights={"final": {**wb, **{k: 2 * v for k, v in biases.items()}}})
    res = barrier(a, b, alphas=3, device="cpu")
    assert res.union_density == snip.density and res.density == (a.density, b.density)
    expected = {**{n: final[n] * np.float32(0.5) for n in snip.masks}, **{k: v * np.float32(1.5) for k, v in biases.items()}}
    loss, acc = evaluate_model(_net(snip, expected), _data(snip), "test")
    assert (res.error[1], res.loss[1]) == (1 - acc, loss)
    for t, err in ((a, res.error[0]), (b, res.error[2])):  # the endpoints keep their own masks
        assert err == 1 - evaluate_model(_net(t, t.weights["final"]), _data(snip), "test")[1]


def test_barrier_is_the_maximum_over_alpha_at_an_interior_alpha_other_than_one_half(snip):
    """A hand-made pair whose error peaks at α = 1/4, not at 1/2 nor at an end. Every weight is 0,
    so the network ignores its input and always predicts the argmax of the interpolated last bias
    ``b(α) = (1 − α)·bA + α·bB``: class ``a`` scores ``2 − 8α``, class ``r`` 1, class ``b``
    ``−2 + 8α``, the others −10. On the grid 0, 1/4, 1/2, 3/4, 1 it predicts a, r, b, b, b, and the
    error of always predicting class c is ``1 − p_c`` (p_c: the share of c in the test labels). With
    r the rarest class, the barrier is ``(1 − p_r) − ((1 − p_a) + (1 − p_b)) / 2``, at α = 1/4."""
    y = _data(snip).test[1].numpy()
    p = np.bincount(y, minlength=10) / len(y)
    r = int(np.argmin(p))
    a, b = (int(c) for c in np.argsort(-p, kind="stable")[:2])  # the two most frequent classes
    assert p[r] < p[b] <= p[a]
    zeros = {k: np.zeros_like(v) for k, v in snip.weights["final"].items()}
    bias_a, bias_b = np.full(10, -10, np.float32), np.full(10, -10, np.float32)
    bias_a[[a, r, b]], bias_b[[a, r, b]] = (2, 1, -2), (-6, 1, 6)
    ta = Ticket(masks=snip.masks, provenance=snip.provenance, weights={"final": {**zeros, "fc3.bias": bias_a}})
    tb = Ticket(masks=snip.masks, provenance=snip.provenance, weights={"final": {**zeros, "fc3.bias": bias_b}})
    res = barrier(ta, tb, alphas=5, device="cpu")
    assert res.alphas == [0.0, 0.25, 0.5, 0.75, 1.0]
    predicted = [a, r, b, b, b]
    assert res.error == pytest.approx([1 - p[c] for c in predicted], abs=1e-12)
    assert int(np.argmax(res.error)) == 1 and res.error[1] > res.error[2]  # the maximum is not the midpoint
    assert res.barrier == pytest.approx((1 - p[r]) - ((1 - p[a]) + (1 - p[b])) / 2, abs=1e-12)
    assert res.barrier > res.error[2] - (res.error[0] + res.error[-1]) / 2
    # the loss: the cross-entropy of the same logits for every input (convex in α: its maximum is an end)
    for alpha, loss in zip(res.alphas, res.loss):
        logits = (1 - alpha) * bias_a.astype(np.float64) + alpha * bias_b
        log_softmax = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        assert loss == pytest.approx(-log_softmax[y].mean(), rel=1e-5)
    assert res.loss_barrier == pytest.approx(max(res.loss[0], res.loss[-1]) - (res.loss[0] + res.loss[-1]) / 2)


def test_batchnorm_statistics_are_reestimated_at_each_alpha(bn):
    other = ticketlab.train(bn, seed=1, train_epochs=1, device="cpu")
    res = barrier(bn, other, alphas=3, recalibrate=3, device="cpu")
    assert res.batchnorm and res.recalibration_batches == 3
    data = _data(bn)
    for t, err, loss in ((bn, res.error[0], res.loss[0]), (other, res.error[-1], res.loss[-1])):
        net = _net(t, t.weights["final"])  # the endpoint, its statistics re-estimated the same way
        assert recalibrate_batchnorm(net, data, batches=3, seed=0) > 0
        direct_loss, direct_acc = evaluate_model(net, data, "test")
        assert (err, loss) == (1 - direct_acc, direct_loss)
    kept = barrier(bn, other, alphas=3, recalibrate=0, device="cpu")  # statistics interpolated
    assert kept.recalibration_batches == 0 and kept.batchnorm
    assert kept.error[0] == 1 - bn.provenance["test_accuracy"]  # the trained statistics, exactly
    assert kept.loss[1] != res.loss[1]


# ------------------------------------------------------------------------ alignment
def _relabelled(t: Ticket, seed: int) -> Ticket:
    """``t`` with the units of every free tensor group permuted at random: the same function."""
    topo = t.provenance["topology"]
    rng = np.random.default_rng(seed)
    of, members, fixed = unit_groups(topo)
    per_group = {g: (np.arange(topo["tensors"][m[0]]) if g in fixed else rng.permutation(topo["tensors"][m[0]]))
                 for g, m in enumerate(members)}
    perms = {name: per_group[of[name]] for name in topo["tensors"]}
    order = create_model(t.provenance["model"], _data(t).spec, **t.provenance["model_config"]).state_dict()
    state = permute_state({k: t.weights["final"][k] for k in order}, perms, topo)
    moved = permute_ticket(t, perms, topo)
    final = {**{n: state[n] for n in t.masks}, **{k: v for k, v in state.items() if k not in t.masks}}
    return Ticket(masks=moved.masks, provenance=t.provenance, weights={"init": moved.weights["init"], "final": final})


@pytest.mark.parametrize("which", ["snip", "bn"])
def test_align_weights_recovers_a_relabelled_copy(which, request):
    a = request.getfixturevalue(which)
    b = _relabelled(a, seed=3)
    assert any(not np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    plain = barrier(a, b, alphas=3, device="cpu")
    assert plain.error[-1] == plain.error[0]  # B computes A's function ...
    assert plain.barrier > 0.02  # ... but the straight line between them crosses a barrier
    res = barrier(a, b, alphas=3, align="weights", device="cpu")
    assert res.barrier == 0.0 and res.loss_barrier == 0.0 and res.align == "weights" and res.align_sweeps >= 1
    assert res.error == [plain.error[0]] * 3 and res.union_density == a.density


# ------------------------------------------------------------------------- refusals
def test_one_line_refusals(snip, bn):
    with pytest.raises(IncompatibleError, match=r"differ in model \('lenet_300_100' vs 'resnet20'\)"):
        barrier(snip, bn, device="cpu")
    with pytest.raises(ConfigError, match=r"stores no trained biases or batch-norm state .*'fc1.bias'.*"
                                          r"mine it again, or run `ticketlab train`"):
        barrier(snip, _old(snip), device="cpu")
    retrained = ticketlab.train(_old(snip), train_epochs=1, device="cpu")  # what the message advises
    assert barrier(snip, retrained, alphas=2, device="cpu").barrier == 0.0  # the same training, bit for bit
    untrained = Ticket(masks=snip.masks, provenance=snip.provenance, weights={"init": snip.weights["init"]})
    with pytest.raises(ConfigError, match="has no trained weights"):
        barrier(untrained, snip, device="cpu")
    other_seed = Ticket(masks=snip.masks, provenance={**snip.provenance, "seed": 1}, weights=snip.weights)
    with pytest.raises(IncompatibleError, match="split digits differently"):
        barrier(snip, other_seed, device="cpu")
    with pytest.raises(ConfigError, match="unknown alignment 'masks'"):
        barrier(snip, snip, align="masks", device="cpu")
    with pytest.raises(ConfigError, match="recalibration batches"):
        barrier(snip, snip, recalibrate=-1, device="cpu")


# ------------------------------------------------------------------------------ CLI
def test_cli_table_json_plot_and_errors(tmp_path, snip, snip_b):
    a, b = save(snip, tmp_path / "a.h5"), save(snip_b, tmp_path / "b.h5")
    runner = CliRunner()
    res = runner.invoke(cli, ["barrier", str(a), str(b), "--alphas", "3", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "a.h5  ->  b.h5" in res.output and "barrier:" in res.output and "union of the two" in res.output
    res = runner.invoke(cli, ["barrier", str(a), str(b), "--alphas", "0.5", "--json", "--plot", str(tmp_path / "p.png"),
                              "--device", "cpu"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["alphas"] == [0.0, 0.5, 1.0] and out["inputs"][0] == {"label": "a.h5", "path": str(a), "density": 0.1}
    assert out["barrier"] == barrier(a, b, alphas=[0.5], device="cpu").barrier and out["recalibration_batches"] == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    old = save(_old(snip), tmp_path / "old.h5")
    for args, message in ((["--alphas", "x"], "--alphas takes"), (["--alphas", "1"], "at least 2 points"),
                          ([], "old.h5' stores no trained biases"), (["--plot", str(tmp_path / "no" / "p.png")], "does not exist")):
        res = runner.invoke(cli, ["barrier", str(a), str(old if not args else b), *args, "--device", "cpu"])
        assert res.exit_code == 2 and res.output.count("\n") == 1 and message in res.output, res.output


def test_plot_several_results(tmp_path):
    r = BarrierResult([0.0, 0.5, 1.0], [0.1, 0.3, 0.1], [0.2, 0.9, 0.2], 0.2, 0.7)
    fig = plot_barrier([r, r], tmp_path / "two.png", labels=["x", "y"])
    assert len(fig.axes[0].lines) == 2 and (tmp_path / "two.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="2 labels for 1 results"):
        plot_barrier([r], labels=["x", "y"])


# --------------------------------------------------------------------- damaged and hostile files
_PEAK = ("import atexit, sys\n"
         "out = sys.argv.pop(1)\n"
         "def peak():\n"
         "    for line in open('/proc/self/status'):\n"
         "        if line.startswith('VmHWM:'):\n"
         "            return int(line.split()[1])\n"
         "atexit.register(lambda: open(out, 'w').write(str(peak())))\n"
         "from ticketlab.cli.main import main\n"
         "main(sys.argv[1:])\n")


def _final_entry(f, name: str) -> str:
    """The path of ``final``'s dataset that holds ``name`` (datasets are numbered, named by attribute)."""
    for key, ds in f["weights/final"].items():
        if ds.attrs["name"] == name:
            return f"weights/final/{key}"
    raise KeyError(name)


def _rewrite(src, dst, name: str, **kwargs) -> None:
    """``src`` copied to ``dst`` with ``final``'s entry ``name`` replaced by a dataset of ``kwargs``."""
    import shutil

    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        where = _final_entry(f, name)
        attrs = dict(f[where].attrs)
        del f[where]
        ds = f.create_dataset(where, **kwargs)
        for k, v in attrs.items():
            ds.attrs[k] = v


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="peak memory via /proc (Linux)")
def test_damaged_and_hostile_tickets_give_one_line_exit_2_and_no_big_allocation(tmp_path, snip):
    """The barrier command as a process, on files it reads in full (the trained state too): a
    truncated file, a bias in ``final`` that declares 40 GB it does not store, and a well-formed
    file whose trained bias does not fit the model. One line on stderr, exit 2, no traceback,
    peak memory that of the imports (no allocation of a declared size)."""
    import subprocess
    import sys

    good = save(snip, tmp_path / "good.h5")
    data = good.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    _rewrite(good, tmp_path / "huge.h5", "fc1.bias", shape=(10**5, 10**5), dtype=np.float32)
    _rewrite(good, tmp_path / "misfit.h5", "fc1.bias", data=np.zeros(7, np.float32))
    cases = {"truncated.h5": "cannot read '", "huge.h5": "cannot read '",
             "misfit.h5": "the trained 'fc1.bias' of 'misfit.h5' has shape (7,)"}
    for name, message in cases.items():
        rss = tmp_path / f"{name}.rss"
        proc = subprocess.run([sys.executable, "-c", _PEAK, str(rss), "barrier", str(good), str(tmp_path / name),
                               "--alphas", "3", "--device", "cpu"], capture_output=True, text=True, timeout=120,
                              env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (name, proc.stderr)
        assert message in lines[0] and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert int(rss.read_text()) < 1024 * 1024, f"{name}: peak {int(rss.read_text()) / 1024:.0f} MB"
