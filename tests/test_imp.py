"""Iterative magnitude pruning: schedules, exact counts, nested rounds, resets, checkpoints, resume."""

import dataclasses
import doctest
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ticketlab
from ticketlab import checkpoint as checkpoint_module
from ticketlab.checkpoint import read_checkpoint, write_checkpoint
from ticketlab.cli.main import cli
from ticketlab.data import load_dataset
from ticketlab.data.base import DataSpec
from ticketlab.errors import ConfigError, TicketFormatError
from ticketlab.metrics.overlap import jaccard
from ticketlab.miners import MiningContext, imp as imp_module
from ticketlab.miners.imp import IMPMiner, parse_reset, reinit_seed
from ticketlab.mining import _select, mine
from ticketlab.models import create_model, prunable_parameters
from ticketlab.selection import keep_count
from ticketlab.training import default_train_config, total_iterations, fit
from warm import run as warm_run

FAST = dict(model="lenet_300_100", dataset="digits", train_epochs=1, seed=0, device="cpu")
TIMING = {"seconds", "train_seconds"}


def _imp(reset="init", **kw):
    args = {**FAST, "rounds": 3, "miner_config": {"reset": reset}}
    args.update(kw)
    return mine("imp", **args)


def _cli(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _same_ticket(a, b):
    assert list(a.masks) == list(b.masks)
    for n in a.masks:
        assert np.array_equal(a.masks[n], b.masks[n]), n
        for snap in ("init", "final"):
            assert np.array_equal(a.weights[snap][n], b.weights[snap][n]), (snap, n)
        assert np.array_equal(a.scores[n], b.scores[n]), n
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(a.history) == strip(b.history)


@pytest.fixture
def train_calls(monkeypatch):
    """Record the weights and start iteration of every training call IMP makes."""
    calls = []
    real = ticketlab.training.fit

    def spy(model, data, config, **kw):
        calls.append({"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                      "start": kw.get("start_iteration", 0), "masks": kw.get("masks")})
        return real(model, data, config, **kw)

    monkeypatch.setattr(ticketlab.training, "fit", spy)
    return calls


# ---------------------------------------------------------------------------------- hand-computed
def test_module_doctests():
    for module in (imp_module, checkpoint_module):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_parse_reset_and_reinit_seed():
    assert parse_reset("init") == ("init", 0)
    assert parse_reset("rewind:0") == ("rewind", 0)
    assert parse_reset("rewind:1234") == ("rewind", 1234)
    assert parse_reset("continue") == ("continue", 0) and parse_reset("reinit") == ("reinit", 0)
    for bad in ("rewind", "rewind:-1", "rewind:1.5", "Init", "", "rewind:5x"):
        with pytest.raises(ConfigError, match="imp option reset must be one of"):
            parse_reset(bad)
    seeds = {reinit_seed(s, k) for s in range(3) for k in range(1, 4)}
    assert len(seeds) == 9 and all(0 <= s < 2**63 for s in seeds)


def test_rate_schedule_counts_are_exact_and_each_round_removes_its_count():
    # 50,200 weights (LeNet-300-100 on 8x8 digits) at 20 % per round: kept = floor(0.8^k N + 1/2)
    n = 50_200
    sched = IMPMiner().schedule(None, None, 5)
    assert sched == [0.8 ** k for k in range(1, 6)]
    kept = [keep_count(d, n) for d in sched]
    assert kept == [40160, 32128, 25702, 20562, 16450]  # 0.8^3 N = 25702.4, 0.8^5 N = 16449.5 -> 16450
    removed = [a - b for a, b in zip([n] + kept, kept)]
    assert removed == [10040, 8032, 6426, 5140, 4112]  # open_lth's sparse_global would remove one more each
    assert IMPMiner(rate=0.5).schedule(None, None, 3) == [0.5, 0.25, 0.125]
    assert IMPMiner().schedule(None, 0.01, 2) == pytest.approx([0.1, 0.01])  # exponential to a target
    assert IMPMiner().schedule(None, None, None) == [0.8 ** k for k in range(1, 6)]  # default 5 rounds


def test_per_kind_rates_follow_frankle_carbin():
    spec = DataSpec("digits", "tensor", (1, 8, 8), 10)
    net = create_model("conv2", spec, seed=0)
    params = prunable_parameters(net)
    ctx = MiningContext(net, params, spec, None, torch.device("cpu"), 0, torch.Generator())
    rates = IMPMiner(rate_conv=0.1, rate_fc=0.2).layer_rates(ctx)
    assert rates == {"conv1.weight": 0.1, "conv2.weight": 0.1, "fc1.weight": 0.2, "fc2.weight": 0.2,
                     "fc3.weight": 0.1}
    assert IMPMiner(rate=0.3, rate_conv=0.15).layer_rates(ctx)["fc1.weight"] == 0.3  # --rate: the other kind
    sched = IMPMiner(rate_conv=0.1, rate_fc=0.2).schedule(ctx, None, 2)
    assert sched[1]["conv1.weight"] == pytest.approx(0.81) and sched[1]["fc3.weight"] == pytest.approx(0.81)
    assert sched[1]["fc1.weight"] == pytest.approx(0.64)
    # the output layer is the model's last layer: not pruned -> no output group
    params = prunable_parameters(net, last_layer=False)
    ctx = MiningContext(net, params, spec, None, torch.device("cpu"), 0, torch.Generator())
    assert IMPMiner(rate_fc=0.2).layer_rates(ctx)["fc2.weight"] == 0.2


def test_per_parameter_selection_is_layer_wise_and_exact():
    scores = {"a": torch.tensor([3.0, 1.0, 2.0, 0.5]), "b": torch.tensor([9.0, 8.0])}
    masks = {"a": torch.tensor([True, True, True, False]), "b": torch.ones(2, dtype=torch.bool)}
    out = _select(scores, {"a": 0.5, "b": 0.5}, "global", masks)  # 'b' would win globally
    assert out["a"].tolist() == [True, False, True, False] and out["b"].tolist() == [True, False]


def test_total_iterations_matches_training():
    data = load_dataset("digits", seed=0)
    base = default_train_config("lenet_300_100", "digits")
    for change in ({"epochs": 1}, {"epochs": 2, "drop_last": True, "batch_size": 100}, {"iterations": 7}):
        cfg = dataclasses.replace(base, **change)
        res = fit(create_model("lenet_300_100", data.spec, seed=0), data, cfg, device="cpu")
        assert total_iterations(cfg, data) == res.iterations, change


# ---------------------------------------------------------------------------------- runs
def test_rounds_are_nested_with_exact_counts_and_history(tmp_path):
    t = _imp(rounds=4, save_rounds=tmp_path)
    files = sorted(tmp_path.glob("round_*.h5"))
    assert [f.name for f in files] == [f"round_{k:02d}.h5" for k in range(5)]
    rounds = [ticketlab.load(f) for f in files]
    total = t.total
    assert [r.kept for r in rounds] == [total] + [keep_count(0.8 ** k, total) for k in range(1, 5)]
    for k in range(4):
        a, b = rounds[k], rounds[k + 1]
        assert all((b.masks[n] <= a.masks[n]).all() for n in a.masks)  # masks only shrink
        assert jaccard(a, b)["__total__"]["value"] == b.kept / a.kept  # nested: J = d(k+1) / d(k)
    _same_ticket(rounds[-1], t)  # the last round's file is the final ticket
    # history: round 0 = dense training, then one row per round with its own density's accuracy
    assert [r["round"] for r in t.history] == [0, 1, 2, 3, 4]
    assert [r["stage"] for r in t.history] == ["dense"] + ["round"] * 4
    for row, ticket in zip(t.history, rounds):
        assert row["density"] == ticket.density and row["kept"] == ticket.kept
        for key in ("test_accuracy", "best_val_accuracy", "early_stop_iteration", "seconds"):
            assert key in row, key
        assert 0.3 < row["test_accuracy"] <= 1.0
    for n in t.masks:  # final weights: trained, pruned ones exactly zero
        assert np.all(t.weights["final"][n][~t.masks[n]] == 0)
        assert np.count_nonzero(t.weights["final"][n]) == t.masks[n].sum()
    assert t.provenance["trained"] and t.provenance["method_config"]["reset"] == "init"


def test_init_resets_to_theta0(train_calls):
    t = _imp("init", rounds=2)
    theta0 = train_calls[0]["state"]  # the dense training starts from θ0
    for n in t.masks:
        assert np.array_equal(theta0[n].numpy(), t.weights["init"][n])
    assert len(train_calls) == 3 and train_calls[0]["masks"] is None
    for call in train_calls[1:]:
        assert call["start"] == 0
        assert all(torch.equal(call["state"][k], theta0[k]) for k in theta0)  # biases too


def test_rewind_restores_the_iteration_k_weights(train_calls):
    k = 7
    t = _imp(f"rewind:{k}", rounds=2)
    data = load_dataset("digits", seed=0)
    cfg = dataclasses.replace(default_train_config("lenet_300_100", "digits"), epochs=1)
    ref = ticketlab.training.fit(create_model("lenet_300_100", data.spec, seed=0), data, cfg, seed=0,
                                 device="cpu", snapshot_at=k)
    assert len(train_calls) == 4  # dense run, 2 rounds, and the reference above
    for call in train_calls[1:3]:
        assert call["start"] == k  # the learning-rate schedule and batch order restart at K
        assert all(torch.equal(call["state"][name], ref.snapshot[name]) for name in ref.snapshot)
    assert not torch.equal(ref.snapshot["fc1.weight"], train_calls[0]["state"]["fc1.weight"])
    assert t.history[1]["iterations"] == t.history[0]["iterations"]  # ends where the dense run ended


def test_reinit_draws_new_weights_but_keeps_the_mask(train_calls, tmp_path):
    (tmp_path / "i").mkdir(), (tmp_path / "r").mkdir()
    init = _imp("init", rounds=2, save_rounds=tmp_path / "i")
    n_init = len(train_calls)
    reinit = _imp("reinit", rounds=2, save_rounds=tmp_path / "r")
    calls = train_calls[n_init:]
    theta0 = calls[0]["state"]
    spec = load_dataset("digits", seed=0).spec
    for k in (1, 2):
        fresh = create_model("lenet_300_100", spec, seed=reinit_seed(0, k)).state_dict()
        assert all(torch.equal(calls[k]["state"][n], fresh[n]) for n in fresh)
        assert not torch.equal(calls[k]["state"]["fc1.weight"], theta0["fc1.weight"])
    assert not torch.equal(calls[1]["state"]["fc1.weight"], calls[2]["state"]["fc1.weight"])  # new draw per round
    # the same dense training gives the same first mask; the trained weights then differ
    r1_init, r1_reinit = ticketlab.load(tmp_path / "i" / "round_01.h5"), ticketlab.load(tmp_path / "r" / "round_01.h5")
    for n in r1_init.masks:
        assert np.array_equal(r1_init.masks[n], r1_reinit.masks[n])
        assert np.all(r1_reinit.weights["final"][n][~r1_reinit.masks[n]] == 0)
        assert np.array_equal(init.weights["init"][n], reinit.weights["init"][n])  # θ0 stays the ticket's init
    assert not np.array_equal(r1_init.weights["final"]["fc1.weight"], r1_reinit.weights["final"]["fc1.weight"])


def test_continue_keeps_the_trained_weights(train_calls, tmp_path):
    _imp("continue", rounds=2, save_rounds=tmp_path)
    r0 = ticketlab.load(tmp_path / "round_00.h5")
    assert all(c["start"] == 0 for c in train_calls)
    for n in r0.masks:  # round 1 starts from the dense run's trained weights
        assert np.array_equal(train_calls[1]["state"][n].numpy(), r0.weights["final"][n])


def test_per_kind_rates_run_layer_wise():
    t = mine("imp", **FAST, rounds=2, miner_config={"rate_fc": 0.2})
    for n, m in t.masks.items():
        d = 0.9 ** 2 if n == "fc3.weight" else 0.8 ** 2
        assert int(m.sum()) == keep_count(d, m.size), n
    assert t.provenance["scope"] == "layer" and t.provenance["schedule"] == "per-layer"
    assert t.kept == t.provenance["target_kept"]


def test_layer_scope_and_explicit_schedule():
    t = _imp(rounds=None, scope="layer", schedule=[0.8, 0.48])
    for m in t.masks.values():
        assert int(m.sum()) == keep_count(0.48, m.size)
    assert [r.get("target_density") for r in t.history[1:]] == [0.8, 0.48]


@pytest.mark.parametrize("kw,message", [
    ({"miner_config": {"reset": "rewind"}}, "imp option reset must be one of"),
    ({"miner_config": {"rate": 1.0}}, "imp option rate must be in"),
    ({"miner_config": {"rate_fc": 0.0}}, "imp option rate-fc must be in"),
    ({"miner_config": {"rate": 0.3}, "density": 0.5}, "not both"),
    ({"miner_config": {"rate_conv": 0.1}, "sparsity": 0.5}, "per-kind rates fix"),
    ({"miner_config": {"rate": 0.3}, "schedule": [0.5]}, "explicit schedule fixes"),
    ({"miner_config": {"reset": "rewind:19"}}, r"past the end of training \(18 iterations\)"),
    ({"rounds": 0}, "rounds must be at least 1"),
    ({"rounds": 2, "schedule": [0.5]}, "the schedule has 1 rounds but rounds is 2"),
])
def test_config_errors(kw, message):
    args = {**FAST, "rounds": 1, **kw}
    with pytest.raises(ConfigError, match=message):
        mine("imp", **args)


# ---------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_bad_files(tmp_path):
    path = write_checkpoint(tmp_path / "c.ckpt", {"fingerprint": {"a": [1, 2]}, "round": 3, "t": torch.arange(3)})
    state = read_checkpoint(path, {"a": (1, 2)})
    assert state["round"] == 3 and torch.equal(state["t"], torch.arange(3))
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file
    with pytest.raises(ConfigError, match=r"different configuration \(a is \[1, 2\] there, \[1, 3\] now\)"):
        read_checkpoint(path, {"a": [1, 3]})
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(TicketFormatError, match="cannot be read"):
        read_checkpoint(tmp_path / "bad.ckpt")
    torch.save({"x": 1}, tmp_path / "other.ckpt")
    with pytest.raises(TicketFormatError, match="is not a ticketlab checkpoint"):
        read_checkpoint(tmp_path / "other.ckpt")


def test_interrupted_run_resumes_to_the_same_ticket(tmp_path, monkeypatch):
    reference = _imp("reinit", rounds=4)
    ckpt = tmp_path / "run.ckpt"
    real = IMPMiner.after_round

    def crash_in_round_3(self, ctx, masks, k):
        if k == 3:
            raise KeyboardInterrupt
        return real(self, ctx, masks, k)

    monkeypatch.setattr(IMPMiner, "after_round", crash_in_round_3)
    with pytest.raises(KeyboardInterrupt):
        _imp("reinit", rounds=4, checkpoint=ckpt)
    assert read_checkpoint(ckpt)["round"] == 2
    monkeypatch.setattr(IMPMiner, "after_round", real)
    with pytest.raises(ConfigError, match="already exists"):  # never silently reused
        _imp("reinit", rounds=4, checkpoint=ckpt)
    with pytest.raises(ConfigError, match=r'different configuration \(miner.reset is "reinit" there, "init" now\)'):
        _imp("init", rounds=4, checkpoint=ckpt, resume=True)
    with pytest.raises(ConfigError, match=r"different configuration \(seed is 0 there, 1 now\)"):
        _imp("reinit", rounds=4, checkpoint=ckpt, resume=True, seed=1)
    resumed = _imp("reinit", rounds=4, checkpoint=ckpt, resume=True)
    assert resumed.provenance["resumed_after_round"] == 2
    _same_ticket(resumed, reference)
    assert read_checkpoint(ckpt)["round"] == 4  # a finished run's checkpoint: resuming just rebuilds
    _same_ticket(_imp("reinit", rounds=4, checkpoint=ckpt, resume=True), reference)


def test_cli_acceptance_all_resets(tmp_path):
    for reset in ("init", "rewind:5", "reinit", "continue"):
        out = tmp_path / f"{reset.replace(':', '_')}.h5"
        res = _cli("mine", "--method", "imp", "--rounds", "5", "--reset", reset, "--train-epochs", "1", "-o", out)
        t = ticketlab.load(out)
        assert t.kept == keep_count(0.8 ** 5, t.total)
        assert [r["round"] for r in t.history] == list(range(6)) and "best val acc" in res.output
        assert not (tmp_path / (out.name + ".ckpt")).exists()  # removed once the ticket is saved
    shown = _cli("inspect", out).output  # the last ticket's trained rounds, read back from the file
    lines = [line.split() for line in shown.splitlines()]
    header = next(i for i, words in enumerate(lines) if words[:2] == ["round", "density"])
    table = lines[header + 1: header + 7]
    assert [int(w[0]) for w in table] == list(range(6))
    assert [float(w[2]) for w in table] == [round(r["test_accuracy"], 4) for r in t.history]


def test_cli_schedule_save_rounds_and_checkpoint_errors(tmp_path):
    out = tmp_path / "s.h5"
    _cli("mine", "--method", "imp", "--schedule", "0.8,0.48,0.2", "--train-epochs", "1", "-o", out,
         "--save-rounds", tmp_path / "rounds")
    t = ticketlab.load(out)
    assert t.kept == keep_count(1 - 0.8, t.total) and len(list((tmp_path / "rounds").glob("*.h5"))) == 4
    write_checkpoint(tmp_path / "s.h5.ckpt", {"fingerprint": {}, "round": 0})
    for args, message in [
        ((), "already exists (an unfinished run?): continue it with the same command and --resume, or delete it"),
        (("--resume",), "different configuration"),
        (("--schedule", "0.8,x"), "option --schedule needs comma-separated densities"),
        (("--schedule", "0.5,0.8,0.2"), "must not increase"),
        (("--schedule", "0.2,0.52,0.8"), "takes densities (fractions kept) now, not sparsities: 0.2,0.52,0.8 "
                                          "increases; as densities the same rounds are --schedule 0.8,0.48,0.2"),
        (("--rate", "0.3", "--density", "0.5"), "not both"),
    ]:
        res = _cli("mine", "--method", "imp", "--train-epochs", "1", "-o", out, *args, ok=False)
        assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1, res.output


def test_sigkilled_subprocess_resumes_to_the_same_ticket(tmp_path):
    """A real run killed (SIGKILL) after round 2 resumes to the uninterrupted run's masks and weights."""
    args = ["mine", "--method", "imp", "--reset", "rewind:3", "--rounds", "6", "--train-epochs", "2", "--quiet",
            "--device", "cpu"]  # bit for bit: on CPU
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    ckpt = tmp_path / "out.h5.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ticketlab", *args, "-o", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.exists() and read_checkpoint(ckpt)["round"] >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    done = read_checkpoint(ckpt)["round"]
    assert 2 <= done < 6
    # the resumed and the uninterrupted run: processes too, started warm (tests/warm.py)
    resumed = warm_run([*args, "-o", out, "--resume"], env=env, timeout=240, preload=("torch", "torch._dynamo"))
    assert resumed.returncode == 0, resumed.stderr
    full = warm_run([*args, "-o", ref], env=env, timeout=240, preload=("torch", "torch._dynamo"))
    assert full.returncode == 0, full.stderr
    a, b = ticketlab.load(out), ticketlab.load(ref)
    assert a.provenance["resumed_after_round"] == done and "resumed_after_round" not in b.provenance
    _same_ticket(a, b)
    assert not ckpt.exists()


# ------------------------------------------------------------------------- docs/results/imp.md
def _imp_studies():
    from benchscripts import load_script

    return load_script("imp_studies")


def test_results_doc_findings_are_generated_from_its_tables():
    """The findings sentences in imp.md are what `imp_studies.py --prose-only` makes of its tables."""
    studies = _imp_studies()
    text = studies.DOC.read_text(encoding="utf-8")
    assert studies.write_findings(text, list(studies.STUDIES)) == text
    for name in studies.STUDIES:
        assert f"<!-- imp-findings:{name}:begin -->" in text


def test_findings_follow_the_numbers():
    studies = _imp_studies()
    block = "\n".join([
        "**m / d**", "", "x:", "",
        "| sparsity | density | continue | init | reinit | init − reinit, paired by seed (init higher) |",
        "|---:|---:|---:|---:|---:|---:|",
        "| 0.00 % | 1.0000 | 0.800 ± 0.010 | 0.800 ± 0.010 | 0.800 ± 0.010 | – |",
        "| 20.00 % | 0.8000 | 0.790 ± 0.010 | 0.810 ± 0.010 | 0.805 ± 0.010 | +0.005 ± 0.010 (4/5) |",
        "| 50.00 % | 0.5000 | 0.820 ± 0.010 | 0.700 ± 0.010 | 0.750 ± 0.010 | -0.050 ± 0.010 (0/5) |",
        "", "early:", "",
        "| sparsity | density | continue | init | reinit |", "|---:|---:|---:|---:|---:|",
        "| 0.00 % | 1.0000 | 0.800 ± 0.010 | 0.800 ± 0.010 | 0.800 ± 0.010 |",
        "| 20.00 % | 0.8000 | 0.790 ± 0.010 | 0.810 ± 0.010 | 0.805 ± 0.010 |",
        "| 50.00 % | 0.5000 | 0.820 ± 0.010 | 0.740 ± 0.010 | 0.750 ± 0.010 |",
    ])
    (panel,) = studies.parse_block(block)
    text = " ".join(studies.panel_findings(panel)).replace("\u00a0", " ")
    assert "`continue` is at or above the dense mean at 50.00 % sparsity and below it at 20.00 % (0.790)" in text
    assert "`init` is at or above the dense mean at 20.00 % sparsity and below it at 50.00 % (0.700)" in text
    assert "`init` > `reinit` > `continue` at 20.00 %" in text and "`continue` > `reinit` > `init` at 50.00 %" in text
    assert "for at least 4 of 5 seeds at 20.00 %; for at most 1 of 5 at 50.00 %" in text
    assert "largest paired mean difference is -0.050 ± 0.010 (0/5) at 50.00 %" in text
    assert "differ by at most 0.040 (`init` at 50.00 %)" in text
