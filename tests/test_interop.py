"""Interop (issue 13): Ticket.apply_to / from_module through torch.nn.utils.prune, and
ticketlab export / import of torch, safetensors and npz mask files, read as untrusted input."""

import hashlib
import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn.utils import prune

from ticketlab.cli.main import cli
from ticketlab.data import get_dataset_info, load_dataset
from ticketlab.errors import ConfigError, IncompatibleError, TicketFormatError
from ticketlab.fileformat import load, save
from ticketlab.interop import FORMATS, export_ticket, from_module, import_masks, read_masks, write_masks
from ticketlab.models import create_model, model_topology, prunable_parameters
from ticketlab.ticket import Ticket

torch.set_num_threads(1)
NEEDS_SAFETENSORS = "safetensors is an optional extra: pip install 'ticketlab[safetensors]'"


def _have_safetensors():
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        return False
    return True


def formats():
    """Every export format; safetensors skips (with the reason) where the package is missing."""
    mark = pytest.mark.skipif(not _have_safetensors(), reason=NEEDS_SAFETENSORS)
    return [pytest.param(f, marks=mark) if f == "safetensors" else f for f in FORMATS]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    err = res.output.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def odd_ticket(seed=0):
    """Masks of several ranks, a dotted name, an empty one, all-kept and all-pruned layers."""
    rng = np.random.default_rng(seed)
    return Ticket(masks={
        "features.0.weight": rng.random((4, 3, 3, 3)) < 0.3,
        "fc.weight": rng.random((5, 7)) < 0.5,
        "fc.bias": np.ones(5, bool),
        "head.weight": np.zeros((2, 5), bool),
        "empty.weight": np.zeros((0, 3), bool),
    }, provenance={"method": "demo"})


def assert_same_masks(a, b):
    assert list(a.masks) == list(b.masks)
    for name in a.masks:
        assert b.masks[name].dtype == np.bool_
        assert b.masks[name].shape == a.masks[name].shape, name
        assert np.array_equal(b.masks[name], a.masks[name]), name


def spec_of(dataset):
    return get_dataset_info(dataset).spec or load_dataset(dataset).spec


def random_ticket(model_name, dataset="digits", density=0.3, seed=0):
    spec = spec_of(dataset)
    net = create_model(model_name, spec, seed=0)
    rng = np.random.default_rng(seed)
    masks = {n: rng.random(tuple(p.shape)) < density for n, p in prunable_parameters(net).items()}
    return Ticket(masks=masks, provenance={"method": "random", "model": model_name, "dataset": dataset})


# ------------------------------------------------------------------------------- apply_to / from_module
@pytest.mark.parametrize("model_name", ["lenet_300_100", "conv2"])
def test_apply_to_gives_the_forward_output_of_hand_masked_weights(model_name):
    ticket = random_ticket(model_name)
    spec = spec_of("digits")
    pruned = create_model(model_name, spec, seed=3)
    by_hand = create_model(model_name, spec, seed=3)
    before = {n: p for n, p in pruned.named_parameters()}
    with torch.no_grad():
        for name, p in by_hand.named_parameters():
            if name in ticket.masks:
                p.mul_(torch.from_numpy(ticket.masks[name]).to(p.dtype))
    assert ticket.apply_to(pruned) is pruned
    x = torch.randn(16, *spec.input_shape, generator=torch.Generator().manual_seed(0))
    pruned.eval(), by_hand.eval()
    with torch.no_grad():
        assert torch.equal(pruned(x), by_hand(x))
        assert not torch.equal(pruned(x), create_model(model_name, spec, seed=3).eval()(x))  # masking mattered
    params, buffers = dict(pruned.named_parameters()), dict(pruned.named_buffers())
    for name, mask in ticket.masks.items():
        module_name, attr = name.rsplit(".", 1)
        module = pruned.get_submodule(module_name)
        assert params[name + "_orig"] is before[name]  # the same Parameter object (optimizers keep working)
        assert torch.equal(buffers[name + "_mask"], torch.from_numpy(mask).float())
        assert torch.equal(getattr(module, attr), params[name + "_orig"] * buffers[name + "_mask"])
        assert prune.is_pruned(module)


@pytest.mark.parametrize("model_name", ["lenet_300_100", "conv2"])
def test_from_module_of_apply_to_is_the_ticket(model_name):
    ticket = random_ticket(model_name, seed=5)
    model = ticket.apply_to(create_model(model_name, spec_of("digits"), seed=0))
    back = Ticket.from_module(model)
    assert_same_masks(ticket, back)
    assert back.provenance["method"] == "imported"
    assert back.provenance["imported_from"]["masks"] == "*_mask buffers"
    assert back.kept == ticket.kept


def test_from_module_reads_masks_made_by_torch_prune_itself():
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch.manual_seed(0)
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    prune.random_unstructured(net[2], "weight", amount=3)
    prune.l1_unstructured(net[2], "bias", amount=1)
    t = Ticket.from_module(net)
    assert list(t.masks) == ["0.weight", "2.weight", "2.bias"]
    assert t.layer_kept() == {"0.weight": 12, "2.weight": 5, "2.bias": 1}
    assert np.array_equal(t.masks["0.weight"], net[0].weight_mask.numpy() == 1)


def test_from_module_zeros_as_pruned_reads_prunable_weights_only():
    lin = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with torch.no_grad():
        lin[0].weight.copy_(torch.tensor([[0.0, 1.0, -2.0], [3.0, 0.0, 0.0]]))
        lin[0].bias.zero_()  # a zero bias is no mask: biases are not prunable weights
    with pytest.raises(IncompatibleError, match="zeros_as_pruned=True"):
        Ticket.from_module(lin)
    t = Ticket.from_module(lin, zeros_as_pruned=True)
    assert list(t.masks) == ["0.weight"]
    assert t.masks["0.weight"].tolist() == [[False, True, True], [True, False, False]]
    assert t.provenance["imported_from"]["masks"] == "zeros in the weights"


def test_from_module_mixes_buffers_and_zeros_in_parameter_order():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    prune.custom_from_mask(net[0], "weight", torch.tensor([[1, 0], [0, 1]]))
    t = from_module(net, zeros_as_pruned=True)
    assert list(t.masks) == ["0.weight", "1.weight"]
    assert t.masks["0.weight"].tolist() == [[True, False], [False, True]]
    assert t.masks["1.weight"].tolist() == [[False, True], [True, True]]


def test_apply_to_checks_everything_before_touching_the_model():
    net = create_model("lenet_300_100", spec_of("digits"), seed=0)
    good = np.ones((300, 64), bool)
    for masks, message in [({"fc1.weight": good, "fc9.weight": np.ones(3, bool)}, "'fc9.weight' names no parameter"),
                           ({"fc1.weight": good, "fc2.weight": np.ones((3, 3), bool)}, r"shape \(3, 3\)")]:
        with pytest.raises(IncompatibleError, match=message):
            Ticket(masks=masks).apply_to(net)
        assert not any(n.endswith("_mask") for n, _ in net.named_buffers())  # nothing was pruned
    Ticket(masks={"fc1.weight": good}).apply_to(net)
    with pytest.raises(IncompatibleError, match="already pruned"):
        Ticket(masks={"fc1.weight": good}).apply_to(net)


def test_apply_to_can_load_a_weight_snapshot_first():
    init = {"weight": np.array([[1.0, 2.0, 3.0]], np.float32)}
    t = Ticket(masks={"weight": np.array([[True, False, True]])}, weights={"init": init})
    lin = t.apply_to(torch.nn.Linear(3, 1, bias=False), weights="init")
    assert lin.weight.tolist() == [[1.0, 0.0, 3.0]] and lin.weight_orig.tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(ConfigError, match="no 'final' weights"):
        t.apply_to(torch.nn.Linear(3, 1, bias=False), weights="final")


# ------------------------------------------------------------------------------- file round-trips
@pytest.mark.parametrize("fmt", formats())
def test_export_then_import_is_exact(tmp_path, fmt):
    ticket = odd_ticket()
    path = export_ticket(ticket, tmp_path / f"m.{fmt}", fmt)
    back = import_masks(path)
    assert_same_masks(ticket, back)
    src = back.provenance["imported_from"]
    assert src["file"] == f"m.{fmt}" and src["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert src["format"] == {"torch-prune": "torch"}.get(fmt, fmt)
    assert back.provenance["kept"] == ticket.kept and back.provenance["achieved_density"] == ticket.density
    assert_same_masks(ticket, load(save(back, tmp_path / "back.h5")))


@pytest.mark.parametrize("fmt", formats())
def test_cli_round_trip_through_a_model(tmp_path, fmt):
    ticket = random_ticket("conv2", density=0.2)
    save(ticket, tmp_path / "t.h5")
    res = run("export", tmp_path / "t.h5", "--to", fmt, "-o", tmp_path / "m.out")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps long lines
    assert f"{len(ticket.masks)} masks" in text and f"as {fmt}" in text
    res = run("import", tmp_path / "m.out", "-o", tmp_path / "back.h5", "--model", "conv2", "--dataset", "digits")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "checked against conv2 for digits" in text and "fc2.weight" in text
    back = load(tmp_path / "back.h5")
    assert_same_masks(ticket, back)
    prov = back.provenance
    assert (prov["model"], prov["dataset"], prov["data_spec"]["input_shape"]) == ("conv2", "digits", [1, 8, 8])
    net = create_model("conv2", spec_of("digits"), seed=0)
    assert prov["topology"] == json.loads(json.dumps(model_topology(net, spec_of("digits"))))


def test_torch_prune_export_loads_into_a_model_pruned_by_torch(tmp_path):
    ticket = random_ticket("lenet_300_100", seed=2)
    path = export_ticket(ticket, tmp_path / "m.pt", "torch-prune")
    net = create_model("lenet_300_100", spec_of("digits"), seed=0)
    for name in ticket.masks:
        module_name, attr = name.rsplit(".", 1)
        prune.identity(net.get_submodule(module_name), attr)
    missing, unexpected = net.load_state_dict(torch.load(path, weights_only=True), strict=False)
    assert unexpected == [] and not any(k.endswith("_mask") for k in missing)
    assert_same_masks(ticket, Ticket.from_module(net))


def test_import_a_pruned_models_state_dict(tmp_path):
    ticket = random_ticket("lenet_300_100", seed=4)
    net = ticket.apply_to(create_model("lenet_300_100", spec_of("digits"), seed=0))
    torch.save(net.state_dict(), tmp_path / "sd.pth")  # fc1.weight_orig, fc1.bias, fc1.weight_mask, ...
    back = import_masks(tmp_path / "sd.pth", model="lenet_300_100", dataset="digits")
    assert_same_masks(ticket, back)
    src = back.provenance["imported_from"]
    assert src["convention"] == "*_mask" and src["ignored_entries"] == 6  # three weight_orig, three biases


@pytest.mark.parametrize("dtype", [torch.int32, torch.float32, torch.bool, torch.bfloat16])
def test_import_open_lth_mask_pth(tmp_path, dtype):
    # open_lth's Mask.save: torch.save({name: mask.int()}) to mask.pth, names without a suffix
    ticket = random_ticket("lenet_300_100", seed=6)
    torch.save({n: torch.from_numpy(m).to(dtype) for n, m in ticket.masks.items()}, tmp_path / "mask.pth")
    back = import_masks(tmp_path / "mask.pth", model="lenet_300_100", dataset="digits")
    assert_same_masks(ticket, back)
    assert back.provenance["imported_from"]["convention"] == "plain"


def test_import_keeps_the_models_parameter_order(tmp_path):
    ticket = random_ticket("lenet_300_100", seed=1)
    reordered = {n: ticket.masks[n] for n in reversed(ticket.names)}
    write_masks(reordered, tmp_path / "m.npz", "npz")
    assert import_masks(tmp_path / "m.npz").names == list(reordered)
    assert import_masks(tmp_path / "m.npz", model="lenet_300_100", dataset="digits").names == ticket.names


# ------------------------------------------------------------------------------- names and values
def test_import_names_the_first_mask_that_matches_no_parameter(tmp_path):
    masks = {"fc1.weight": np.ones((300, 64), bool), "layer9.weight": np.ones(3, bool), "zz.weight": np.ones(2, bool)}
    write_masks(masks, tmp_path / "m.npz", "npz")
    res = run("import", tmp_path / "m.npz", "-o", tmp_path / "t.h5", "--model", "lenet_300_100", "--dataset", "digits")
    one_line_error(res, "'layer9.weight' names no parameter", "lenet_300_100", "m.npz")
    assert "zz.weight" not in res.output and not (tmp_path / "t.h5").exists()


def test_import_checks_shapes_against_the_model(tmp_path):
    write_masks({"fc2.weight": np.ones((100, 301), bool)}, tmp_path / "m.npz", "npz")
    with pytest.raises(IncompatibleError, match=r"'fc2.weight' has shape \(100, 301\)"):
        import_masks(tmp_path / "m.npz", model="lenet_300_100", dataset="digits")


def test_model_and_dataset_go_together(tmp_path):
    write_masks({"w": np.ones(2, bool)}, tmp_path / "m.npz", "npz")
    one_line_error(run("import", tmp_path / "m.npz", "-o", tmp_path / "t.h5", "--model", "conv2"),
                   "--model and --dataset go together")
    with pytest.raises(ConfigError, match="model and dataset go together"):
        import_masks(tmp_path / "m.npz", dataset="digits")


@pytest.mark.parametrize("values", [np.array([0.0, 0.5]), np.array([0, 2]), np.array([1.0, np.nan])])
def test_values_other_than_zero_and_one_are_refused_naming_the_mask(tmp_path, values):
    torch.save({"fc.weight_mask": torch.from_numpy(values)}, tmp_path / "m.pt")
    np.savez(tmp_path / "m.npz", **{"fc.weight": values})
    for name in ("m.pt", "m.npz"):
        with pytest.raises(TicketFormatError, match="mask 'fc.weight' holds values other than 0 and 1"):
            read_masks(tmp_path / name)


def test_numpy_savez_files_import(tmp_path):
    np.savez_compressed(tmp_path / "m.npz", **{"a.weight_mask": np.eye(3), "a.weight_orig": np.ones((3, 3))})
    found = read_masks(tmp_path / "m.npz")
    assert list(found.masks) == ["a.weight"] and found.masks["a.weight"].tolist() == np.eye(3, dtype=bool).tolist()
    assert found.ignored == 1


def test_names_from_files_are_shown_escaped(tmp_path):
    write_masks({"evil\x1b[2J.weight": np.ones(3, bool)}, tmp_path / "m.npz", "npz")
    res = run("import", tmp_path / "m.npz", "-o", tmp_path / "t.h5")
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "evil\\x1b[2J.weight" in res.output


# ------------------------------------------------------------------------------- untrusted files
class _Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _hostile_files(tmp_path, marker):
    """A bare pickle as .pth and .pt, a torch zip file holding the payload, and an npz whose member
    is an object array (a pickle inside a .npy)."""
    payload = {"fc.weight_mask": _Payload(marker)}
    (tmp_path / "bare.pth").write_bytes(pickle.dumps(payload))
    (tmp_path / "bare.pt").write_bytes(pickle.dumps(payload))
    torch.save(payload, tmp_path / "zip.pt")
    np.savez(tmp_path / "objects.npz", **{"fc.weight": np.array([_Payload(marker)], dtype=object)})
    return ["bare.pth", "bare.pt", "zip.pt", "objects.npz"]


def test_the_payloads_are_live_when_unpickled(tmp_path):
    # without this check the refusal test below could pass with payloads that do nothing
    marker = tmp_path / "control"
    names = _hostile_files(tmp_path, marker)
    pickle.loads((tmp_path / names[0]).read_bytes())
    assert marker.exists()
    marker.unlink()
    torch.load(tmp_path / "zip.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    np.load(tmp_path / "objects.npz", allow_pickle=True)["fc.weight"]
    assert marker.exists()


def test_no_import_unpickles_a_user_file(tmp_path):
    marker = tmp_path / "marker"
    for name in _hostile_files(tmp_path, marker):
        res = run("import", tmp_path / name, "-o", tmp_path / "t.h5", "--model", "lenet_300_100",
                  "--dataset", "digits")
        err = one_line_error(res, name)
        assert any(w in err for w in ("never unpickles", "never loads")), err
        assert not marker.exists(), name
        assert not (tmp_path / "t.h5").exists()


def test_other_files_are_refused_in_one_line(tmp_path):
    save(odd_ticket(), tmp_path / "t.h5")
    (tmp_path / "text.pt").write_text("hello")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    torch.save({"w": {"nested": torch.ones(2)}}, tmp_path / "nested.pt")
    (tmp_path / "cut.npz").write_bytes((export_ticket(odd_ticket(), tmp_path / "m.npz", "npz")).read_bytes()[:-30])
    cases = {"t.h5": "HDF5", "text.pt": "not a torch, safetensors or npz file", "other.zip": "neither a torch",
             "list.pt": "holds a list", "nested.pt": "entry 'w' is a dict", "cut.npz": "damaged",
             "missing.npz": "no such file"}
    for name, needle in cases.items():
        one_line_error(run("import", tmp_path / name, "-o", tmp_path / "x.h5"), name, needle)


def _npz_with_member(path, name, header_shape, data):
    """An npz whose .npy member's header declares ``header_shape`` but stores ``data`` bytes."""
    header = {"descr": "|b1", "fortran_order": False, "shape": header_shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name + ".npy", buf.getvalue() + data)


def test_npz_declared_sizes_are_checked_before_allocating(tmp_path):
    _npz_with_member(tmp_path / "huge.npz", "fc.weight", (10**6, 10**6), b"\x01" * 64)
    with pytest.raises(TicketFormatError, match=r"declares shape \(1000000, 1000000\)"):
        read_masks(tmp_path / "huge.npz")
    # a genuine header whose (deflated) data would inflate past max_params: refused from the header
    _npz_with_member(tmp_path / "big.npz", "fc.weight", (2 * 10**6,), b"\x00" * (2 * 10**6))
    assert (tmp_path / "big.npz").stat().st_size < 10**5
    with pytest.raises(TicketFormatError, match="declare 2,000,000 values, more than max_params = 1,000"):
        read_masks(tmp_path / "big.npz", max_params=1000)
    assert read_masks(tmp_path / "big.npz", max_params=2 * 10**6).masks["fc.weight"].size == 2 * 10**6


@pytest.mark.parametrize("fmt", formats())
def test_max_params_bounds_every_format(tmp_path, fmt, monkeypatch):
    path = write_masks({"w": np.ones(5000, bool)}, tmp_path / "m.out", fmt)
    assert read_masks(path, max_params=5000).masks["w"].size == 5000
    with pytest.raises(TicketFormatError, match="more than max_params = 4,999"):
        read_masks(path, max_params=4999)
    monkeypatch.setenv("TICKETLAB_MAX_PARAMS", "4999")  # the default bound, as ticket files use it
    one_line_error(run("import", path, "-o", tmp_path / "t.h5"), "TICKETLAB_MAX_PARAMS=N")


def _safetensors_bytes(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("header,data,needle", [
    ({"w": {"dtype": "BOOL", "shape": [10**9], "data_offsets": [0, 10**9]}}, b"\x01" * 8, "file stores 8 bytes"),
    ({"w": {"dtype": "BOOL", "shape": [8], "data_offsets": [0, 4]}}, b"\x01" * 8, "declares 8 bytes at offsets 0-4"),
    ({"w": {"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}}, b"\x01" * 8, "has dtype F8_E4M3"),
    ({"w": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 8]}}, b"\x01" * 8, "malformed shape"),
])
def test_safetensors_headers_are_checked_before_reading(tmp_path, header, data, needle):
    (tmp_path / "m.safetensors").write_bytes(_safetensors_bytes(header, data))
    with pytest.raises(TicketFormatError, match=needle):
        read_masks(tmp_path / "m.safetensors")


def test_safetensors_header_length_beyond_the_file(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", 10**12) + b'{"w": 1}')
    with pytest.raises(TicketFormatError, match="not a torch, safetensors or npz file"):
        read_masks(tmp_path / "m.safetensors")


def test_torch_zip_declared_sizes_are_checked_before_loading(tmp_path):
    torch.save({"w_mask": torch.ones(100)}, tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as src, zipfile.ZipFile(tmp_path / "bomb.pt", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
        dst.writestr("m/extra", b"\x00" * (70 * 2**20), compress_type=zipfile.ZIP_DEFLATED)  # > 64 MiB slack
    assert read_masks(tmp_path / "m.pt", max_params=100).masks["w"].all()
    assert (tmp_path / "bomb.pt").stat().st_size < 10**6
    with pytest.raises(TicketFormatError, match="members declare 73,4.* bytes, more than max_params = 100"):
        read_masks(tmp_path / "bomb.pt", max_params=100)


def test_deflated_torch_files_are_read_without_mmap(tmp_path):
    # torch.load(mmap=True) would read a compressed member's bytes as tensor data
    torch.save({"w_mask": torch.tensor([0.0, 1.0, 1.0, 0.0])}, tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as src, zipfile.ZipFile(tmp_path / "d.pt", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    assert read_masks(tmp_path / "d.pt").masks["w"].tolist() == [False, True, True, False]


def test_missing_safetensors_package_is_one_sentence_on_installing_it(tmp_path, monkeypatch):
    for mod in ("safetensors", "safetensors.numpy"):
        monkeypatch.setitem(sys.modules, mod, None)  # import raises ImportError
    save(odd_ticket(), tmp_path / "t.h5")
    one_line_error(run("export", tmp_path / "t.h5", "--to", "safetensors", "-o", tmp_path / "m.safetensors"),
                   "pip install safetensors")
    (tmp_path / "m.safetensors").write_bytes(_safetensors_bytes(
        {"w": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x00"))
    with pytest.raises(ConfigError, match=r"pip install 'ticketlab\[safetensors\]'"):
        read_masks(tmp_path / "m.safetensors")


# ------------------------------------------------------------------------------- CLI odds and ends
def test_export_refuses_cleanly(tmp_path):
    one_line_error(run("export", tmp_path / "none.h5", "--to", "npz", "-o", tmp_path / "m.npz"), "none.h5")
    save(odd_ticket(), tmp_path / "t.h5")
    one_line_error(run("export", tmp_path / "t.h5", "--to", "npz", "-o", tmp_path / "no" / "m.npz"), "does not exist")
    one_line_error(run("export", tmp_path / "t.h5", "--to", "onnx", "-o", tmp_path / "m.npz"), "onnx")
    with pytest.raises(ConfigError, match="unknown mask format 'onnx'"):
        export_ticket(odd_ticket(), tmp_path / "m.x", "onnx")


def test_cli_format_choices_are_the_apis():
    from ticketlab.cli.export import FORMAT_CHOICES

    assert FORMAT_CHOICES == FORMATS


def test_real_subprocess_npz_export_and_import_never_import_torch(tmp_path):
    save(odd_ticket(), tmp_path / "t.h5")
    code = ("import sys; from ticketlab.cli.main import main\n"
            "for args in (['export', sys.argv[1], '--to', 'npz', '-o', sys.argv[2]], ['import', sys.argv[2], '-o', sys.argv[3]]):\n"
            "    try:\n        main(args)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'npz interop imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.h5"), str(tmp_path / "m.npz"),
                           str(tmp_path / "back.h5")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "5 masks" in proc.stdout
    assert_same_masks(odd_ticket(), load(tmp_path / "back.h5"))


def test_top_level_names():
    import ticketlab
    import ticketlab.interop

    assert ticketlab.export_ticket is ticketlab.interop.export_ticket
    assert ticketlab.import_masks is ticketlab.interop.import_masks


@pytest.mark.parametrize("header", [
    {"w": {"dtype": ["BOOL"], "shape": [1], "data_offsets": [0, 1]}},
    {"w": [[[[1]]]]},
    {"__metadata__": {"names": "[\"x\"]"}, "w": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]}},
])
def test_odd_safetensors_headers_are_one_line_or_ignored(tmp_path, header):
    (tmp_path / "m.safetensors").write_bytes(_safetensors_bytes(header, b"\x01"))
    if "__metadata__" in header:  # a stored order naming other masks is ignored
        pytest.importorskip("safetensors", reason=NEEDS_SAFETENSORS)
        assert read_masks(tmp_path / "m.safetensors").masks["w"].tolist() == [True]
        return
    with pytest.raises(TicketFormatError, match="tensor 'w'|header entry 'w'"):
        read_masks(tmp_path / "m.safetensors")


def test_deeply_nested_safetensors_header_is_one_line(tmp_path):
    text = b'{"w": ' + b"[" * 200_000
    (tmp_path / "deep.safetensors").write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(TicketFormatError, match="its header is not JSON"):
        read_masks(tmp_path / "deep.safetensors")


# ------------------------------------------------------------------------------- mine --help: --scope
def test_scope_help_names_each_miners_own_default():
    from ticketlab.cli.mine import scope_help
    from ticketlab.miners import get_miner, list_miners

    res = CliRunner().invoke(cli, ["mine", "--help"], terminal_width=1000)
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "--scope" in ln)
    assert scope_help() in " ".join(line.split()), line
    default_part = line.split("[default: ", 1)[1]
    common, _, rest = default_part.partition(";")
    listed, only = {}, set()
    for group in filter(None, (g.strip(" ].") for g in rest.split(";"))):
        scope, _, names = group.partition(" for ")
        for n in names.split(", "):
            listed[n.replace(" (its only scope)", "")] = scope
            if n.endswith(" (its only scope)"):
                only.add(n.replace(" (its only scope)", ""))
    for name in list_miners():
        scopes = get_miner(name).scopes
        assert listed.get(name, common.strip()) == scopes[0], (name, line)
        assert (name in only) == (len(scopes) == 1), (name, line)
    assert listed.get("supermask") == "layer" and listed.get("edge_popup") == "layer"


# ------------------------------------------------------------------------------- open_lth's files
def open_lth_lenet_masks(plan=(300, 100), inputs=784, outputs=10, seed=0):
    """Masks named as open_lth's mnist_lenet_<plan> names its prunable weights, in its order.

    open_lth's ``models/mnist_lenet.py``: ``fc_layers`` (a ModuleList of Linear layers, the first
    taking 784 inputs) then ``fc``; ``prunable_layer_names`` (``models/base.py``) are the Linear
    weights. ``Mask.save`` (``pruning/mask.py``) writes them as int tensors.
    """
    rng = np.random.default_rng(seed)
    widths = [inputs, *plan, outputs]
    names = [f"fc_layers.{i}.weight" for i in range(len(plan))] + ["fc.weight"]
    return {n: rng.random((widths[i + 1], widths[i])) < 0.4 for i, n in enumerate(names)}


def pruned_model_state_dict(masks, seed=0):
    """What ``PrunedModel(model, mask).state_dict()`` holds (open_lth's ``pruning/pruned_model.py``):
    its own buffers first, ``mask_`` + the name with ``.`` as ``___`` (float), then the wrapped
    model's entries under ``model.``."""
    g = torch.Generator().manual_seed(seed)
    sd = {"mask_" + n.replace(".", "___"): torch.from_numpy(m).float() for n, m in masks.items()}
    for n, m in masks.items():
        sd["model." + n] = torch.randn(m.shape, generator=g) * torch.from_numpy(m)
        sd["model." + n[: -len("weight")] + "bias"] = torch.randn(m.shape[0], generator=g)
    return sd


def open_lth_checkpoint(masks):
    """open_lth's ``checkpoint.pth`` (``training/checkpointing.py``): ep, it, the PrunedModel's state
    dict, the optimizer's state dict and the logger as a string."""
    return {"ep": 3, "it": 0, "model_state_dict": pruned_model_state_dict(masks),
            "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
            "logger": "train_loss,0,2.3"}


def test_pruned_model_state_dict_gives_its_mask_buffers_under_the_parameter_names(tmp_path):
    masks = open_lth_lenet_masks(seed=3)
    torch.save(pruned_model_state_dict(masks), tmp_path / "model_ep40_it0.pth")
    found = read_masks(tmp_path / "model_ep40_it0.pth")
    assert found.convention == "open_lth PrunedModel" and found.ignored == 6  # 3 weights, 3 biases
    assert list(found.masks) == ["fc_layers.0.weight", "fc_layers.1.weight", "fc.weight"]
    for n, m in masks.items():
        assert np.array_equal(found.masks[n], m), n
    res = run("import", tmp_path / "model_ep40_it0.pth", "-o", tmp_path / "t.h5")
    assert res.exit_code == 0, res.output
    assert "open_lth PrunedModel mask_* buffers, 6 other entries ignored" in " ".join(res.output.split())


def test_mask_prefix_without_a_wrapped_model_stays_plain(tmp_path):
    # a module really called "mask_..." in a plain mask file: no model.* entries, so no renaming
    torch.save({"mask_head___weight": torch.ones(2, 2), "fc.weight": torch.zeros(2, 2)}, tmp_path / "m.pt")
    assert list(read_masks(tmp_path / "m.pt").masks) == ["mask_head___weight", "fc.weight"]


def test_a_training_checkpoint_says_where_its_masks_are(tmp_path):
    masks = open_lth_lenet_masks(seed=1)
    torch.save(open_lth_checkpoint(masks), tmp_path / "checkpoint.pth")
    err = one_line_error(run("import", tmp_path / "checkpoint.pth", "-o", tmp_path / "x.h5"))
    assert err == (f"error: cannot read masks from '{tmp_path / 'checkpoint.pth'}': it is a checkpoint, not a mask "
                   "file (entries 'ep', 'it', 'model_state_dict', 'optimizer_state_dict', 'logger'; entry 'ep' is "
                   "an int, not a tensor); entry 'model_state_dict' is an open_lth PrunedModel state dict with "
                   "mask_* buffers: import open_lth's mask.pth from the same folder, or save that entry alone "
                   "(torch.save(checkpoint['model_state_dict'], 'sd.pth')) and import sd.pth")
    # and the advice works: the saved entry imports to the same masks
    torch.save(torch.load(tmp_path / "checkpoint.pth", weights_only=True)["model_state_dict"], tmp_path / "sd.pth")
    assert all(np.array_equal(read_masks(tmp_path / "sd.pth").masks[n], m) for n, m in masks.items())


def test_a_checkpoint_without_masks_points_at_the_mask_file(tmp_path):
    plain = {"ep": 0, "it": 0, "model_state_dict": {"fc.weight": torch.ones(2, 2)}}
    torch.save(plain, tmp_path / "checkpoint.pth")
    one_line_error(run("import", tmp_path / "checkpoint.pth", "-o", tmp_path / "x.h5"),
                   "it is a checkpoint, not a mask file", "entry 'model_state_dict' holds no masks",
                   "open_lth writes mask.pth")
    torch.save({"state_dict": {"fc.weight_mask": torch.ones(2, 2)}, "epoch": 1}, tmp_path / "lightning.pt")
    one_line_error(run("import", tmp_path / "lightning.pt", "-o", tmp_path / "x.h5"),
                   "entry 'state_dict' holds *_mask buffers: save that entry alone")


def test_a_state_dict_of_weights_is_refused_with_a_hint(tmp_path):
    torch.save({"fc.weight": torch.tensor([[0.5, -1.0]])}, tmp_path / "weights.pt")
    one_line_error(run("import", tmp_path / "weights.pt", "-o", tmp_path / "x.h5"),
                   "mask 'fc.weight' holds values other than 0 and 1 (weights rather than a mask?",
                   "open_lth's mask_* buffers")


# ------------------------------------------------------------------------------- renames, name maps
def save_open_lth_mask(masks, path):
    torch.save({n: torch.from_numpy(m).int() for n, m in masks.items()}, path)  # Mask.save: {k: v.int()}
    return path


@pytest.mark.parametrize("plan, model, dataset", [((300, 100), "lenet_300_100", "mnist"),
                                                  ((200, 30), "mlp_200_30", "mnist5k"),
                                                  ((300, 100), "lenet_300_100", "fashion_mnist")])
def test_open_lth_lenet_mask_imports_onto_the_matching_ticketlab_model(tmp_path, plan, model, dataset):
    masks = open_lth_lenet_masks(plan, seed=5)
    path = save_open_lth_mask(masks, tmp_path / "mask.pth")
    res = run("import", path, "-o", tmp_path / "t.h5", "--names", "open_lth", "--model", model, "--dataset", dataset)
    assert res.exit_code == 0, res.output
    t = load(tmp_path / "t.h5")
    expected = {"fc1.weight": "fc_layers.0.weight", "fc2.weight": "fc_layers.1.weight", "fc3.weight": "fc.weight"}
    assert t.names == list(expected)
    for new, old in expected.items():
        assert np.array_equal(t.masks[new], masks[old]), new
    src = t.provenance["imported_from"]
    assert src["name_map"] == "open_lth"
    assert src["renamed"] == {"fc_layers.0": "fc1", "fc_layers.1": "fc2", "fc": "fc3"}
    assert t.provenance["model"] == model and t.provenance["dataset"] == dataset


def test_a_pruned_model_state_dict_takes_the_open_lth_map_too(tmp_path):
    masks = open_lth_lenet_masks(seed=8)
    torch.save(pruned_model_state_dict(masks), tmp_path / "sd.pth")
    t = import_masks(tmp_path / "sd.pth", names="open_lth", model="lenet_300_100", dataset="mnist")
    assert np.array_equal(t.masks["fc3.weight"], masks["fc.weight"])


def test_open_lth_names_without_the_map_say_which_option_maps_them(tmp_path):
    path = save_open_lth_mask(open_lth_lenet_masks(), tmp_path / "mask.pth")
    err = one_line_error(run("import", path, "-o", tmp_path / "t.h5", "--model", "lenet_300_100", "--dataset", "mnist"),
                         "mask 'fc_layers.0.weight' names no parameter")
    assert err.endswith("these are open_lth's mnist_lenet names: --names open_lth maps them to ticketlab's "
                        "fc1, fc2, ... (lenet_300_100, mlp_200_30)"), err
    with pytest.raises(IncompatibleError, match=r"names='open_lth' maps them"):
        import_masks(path, model="lenet_300_100", dataset="mnist")


def test_open_lth_lenet_against_digits_is_one_line_on_the_inputs(tmp_path):
    path = save_open_lth_mask(open_lth_lenet_masks(), tmp_path / "mask.pth")
    err = one_line_error(run("import", path, "-o", tmp_path / "t.h5", "--names", "open_lth", "--model",
                             "lenet_300_100", "--dataset", "digits"))
    assert err == (f"error: 'mask.pth' does not fit model 'lenet_300_100' for 'digits': mask 'fc1.weight' has shape "
                   "(300, 784) but the parameter has shape (300, 64); the masks take 784 inputs (open_lth's "
                   "mnist_lenet: 28x28 images) and this data set 64: use a 28x28 data set (mnist, fashion_mnist, "
                   "mnist5k)")


def test_the_open_lth_map_refuses_other_names(tmp_path):
    write_masks({"conv.weight": np.ones((2, 2), bool)}, tmp_path / "m.npz", "npz")
    one_line_error(run("import", tmp_path / "m.npz", "-o", tmp_path / "t.h5", "--names", "open_lth"),
                   "the open_lth name map is for mnist_lenet models", "mask 'conv.weight'")
    write_masks({"fc_layers.1.weight": np.ones((2, 2), bool)}, tmp_path / "gap.npz", "npz")
    one_line_error(run("import", tmp_path / "gap.npz", "-o", tmp_path / "t.h5", "--names", "open_lth"),
                   "needs fc_layers.0 .. fc_layers.0; the file has layers 1")


def test_rename_exact_names_and_module_prefixes(tmp_path):
    masks = {"a.weight": np.array([True, False]), "a.bias": np.array([True]), "ab.weight": np.array([False]),
             "b": np.array([True, True])}
    write_masks(masks, tmp_path / "m.npz", "npz")
    res = run("import", tmp_path / "m.npz", "-o", tmp_path / "t.h5", "--rename", "a=x", "--rename", "b = y.z")
    assert res.exit_code == 0, res.output
    t = load(tmp_path / "t.h5")
    assert t.names == ["x.weight", "x.bias", "ab.weight", "y.z"]  # 'a' is a module prefix, never a text prefix
    assert np.array_equal(t.masks["x.weight"], masks["a.weight"]) and np.array_equal(t.masks["y.z"], masks["b"])
    # the longest FROM wins
    t2 = import_masks(tmp_path / "m.npz", rename={"a": "x", "a.bias": "c.bias"})
    assert t2.names == ["x.weight", "c.bias", "ab.weight", "b"]


def test_rename_file_and_rename_options_together(tmp_path):
    masks = open_lth_lenet_masks(seed=2)
    path = save_open_lth_mask(masks, tmp_path / "mask.pth")
    (tmp_path / "map.json").write_text(json.dumps({"fc_layers.0": "fc1", "fc_layers.1": "fc2", "fc": "out"}))
    res = run("import", path, "-o", tmp_path / "t.h5", "--rename-file", tmp_path / "map.json", "--rename", "fc=fc3",
              "--model", "lenet_300_100", "--dataset", "mnist")
    assert res.exit_code == 0, res.output
    t = load(tmp_path / "t.h5")
    assert t.names == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert np.array_equal(t.masks["fc3.weight"], masks["fc.weight"])


@pytest.mark.parametrize("args, needle", [
    (["--rename", "fc1"], "--rename 'fc1' is not FROM=TO"),
    (["--rename", "=fc1"], "--rename '=fc1' is not FROM=TO"),
    (["--rename", "a="], "--rename 'a=' is not FROM=TO"),
    (["--rename", "a=x", "--rename", "a=y"], "rename 'a=y': 'a' is already renamed to 'x'"),
    (["--rename", "nothing=x"], "rename 'nothing' matches no mask in the file (its masks: a.weight, b.weight)"),
    (["--rename", "a=b"], "renaming gives two masks the name 'b.weight' ('a.weight' and 'b.weight')"),
    (["--names", "other"], "Invalid value for '--names'"),
])
def test_bad_renames_are_one_line(tmp_path, args, needle):
    write_masks({"a.weight": np.ones(2, bool), "b.weight": np.ones(2, bool)}, tmp_path / "m.npz", "npz")
    res = run("import", tmp_path / "m.npz", "-o", tmp_path / "t.h5", *args)
    if "Invalid value" in needle:  # click's own usage error
        assert res.exit_code == 2 and needle in res.output
    else:
        one_line_error(res, needle)
    assert not (tmp_path / "t.h5").exists()


@pytest.mark.parametrize("content, needle", [
    ("[1, 2]", "holds list, not a JSON object of names"),
    ("{}", "holds nothing, not a JSON object of names"),
    ('{"a": 3}', "entry 'a' must map a name to a non-empty name (it maps to 3)"),
    ('{"a": ""}', "entry 'a' must map a name to a non-empty name"),
    ("{not json", "cannot read rename file"),
    (None, "cannot read rename file"),
])
def test_bad_rename_files_are_one_line(tmp_path, content, needle):
    write_masks({"a.weight": np.ones(2, bool)}, tmp_path / "m.npz", "npz")
    if content is not None:
        (tmp_path / "map.json").write_text(content)
    one_line_error(run("import", tmp_path / "m.npz", "-o", tmp_path / "t.h5", "--rename-file", tmp_path / "map.json"),
                   needle, "map.json")
    assert not (tmp_path / "t.h5").exists()


# ------------------------------------------------------------------------------- docs/interop.md's torch-prune recipe
def documented_recipe():
    """The python block after ``<!-- recipe: torch-prune -->`` in docs/interop.md, as written there."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "interop.md").read_text()
    after = text.split("<!-- recipe: torch-prune -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_torch_prune_recipe_masks_the_weights_at_once(tmp_path, monkeypatch):
    ticket = random_ticket("lenet_300_100", seed=9)
    monkeypatch.chdir(tmp_path)
    export_ticket(ticket, "t_masks.pt", "torch-prune")
    net = create_model("lenet_300_100", spec_of("digits"), seed=0)
    dense = {n: p.detach().clone() for n, p in net.named_parameters()}
    exec(compile(documented_recipe(), "docs/interop.md", "exec"), {"net": net})
    for name, mask in ticket.masks.items():
        module_name, attr = name.rsplit(".", 1)
        module = net.get_submodule(module_name)
        expected = dense[name] * torch.from_numpy(mask)
        assert torch.equal(getattr(module, attr), expected), name  # no forward pass yet
        assert torch.equal(getattr(module, attr + "_orig"), dense[name])
    assert_same_masks(ticket, Ticket.from_module(net))


def test_the_pitfall_the_docs_describe_is_torchs_behaviour(tmp_path):
    # prune.identity + load_state_dict: the buffers are right, module.weight is not until forward
    ticket = random_ticket("lenet_300_100", seed=9)
    path = export_ticket(ticket, tmp_path / "t_masks.pt", "torch-prune")
    net = create_model("lenet_300_100", spec_of("digits"), seed=0)
    for name in ticket.masks:
        module_name, attr = name.rsplit(".", 1)
        prune.identity(net.get_submodule(module_name), attr)
    net.load_state_dict(torch.load(path, weights_only=True), strict=False)
    assert_same_masks(ticket, Ticket.from_module(net))
    assert bool((net.fc1.weight != 0).all()) and not ticket.masks["fc1.weight"].all()  # still dense
    net(torch.zeros(1, 64))
    assert torch.equal(net.fc1.weight, net.fc1.weight_orig * torch.from_numpy(ticket.masks["fc1.weight"]))


def test_other_open_lth_lenets_fit_lenet_300_100_with_their_hidden_widths(tmp_path):
    masks = open_lth_lenet_masks(plan=(100,), seed=4)
    path = save_open_lth_mask(masks, tmp_path / "mask.pth")
    t = import_masks(path, names="open_lth", model="lenet_300_100", dataset="mnist", model_config={"hidden": (100,)})
    assert t.names == ["fc1.weight", "fc2.weight"] and np.array_equal(t.masks["fc2.weight"], masks["fc.weight"])


def test_mask_buffers_that_mask_no_wrapped_entry_stay_plain(tmp_path):
    # a mask_* buffer with no model.<name> beside it is not PrunedModel's: every entry is read as it is
    torch.save({"mask_fc___weight": torch.ones(2), "model.other.weight": torch.ones(2)}, tmp_path / "m.pt")
    found = read_masks(tmp_path / "m.pt")
    assert found.convention == "plain" and list(found.masks) == ["mask_fc___weight", "model.other.weight"]
