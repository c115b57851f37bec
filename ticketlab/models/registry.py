"""The model registry: build a registered architecture for a data set, list its prunable weights
and describe its wiring as a JSON layered graph (the *topology*).

Example:
    >>> from ticketlab.data.base import DataSpec
    >>> spec = DataSpec("digits", "tensor", (1, 8, 8), 10)
    >>> model = create_model("lenet_300_100", spec, seed=0)
    >>> list(prunable_parameters(model))
    ['fc1.weight', 'fc2.weight', 'fc3.weight']
    >>> model_topology(model, spec)["tensors"]
    {'input': 64, 't1': 300, 't2': 100, 't3': 10}
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ticketlab.data.base import DataSpec
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.registry import Registry

KINDS = ("vector", "image", "graph")
"""Model kinds: ``vector`` flattens any tensor input (MLPs), ``image`` needs ``(C, H, W)``
inputs, ``graph`` needs a graph data set and is called as ``model(x, edge_index)``."""

INITS = ("kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform")

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model without building it.

    Attributes:
        name: registry name.
        kind: ``"vector"``, ``"image"`` or ``"graph"``.
        description: one line (the factory docstring's first line).
        min_size: smallest image height/width it accepts (``2 ** downsamples``; 1 if not an
            image model).
    """

    name: str
    kind: str
    description: str
    min_size: int = 1


@dataclass(frozen=True)
class _Entry:
    factory: Factory
    info: ModelInfo
    downsamples: int


_MODELS: Registry[_Entry] = Registry("model")


def register_model(
    name: str, *, kind: str, downsamples: int = 0, description: str | None = None
) -> Callable[[Factory], Factory]:
    """Decorator registering ``fn(spec: DataSpec, **kwargs) -> nn.Module`` as model ``name``.

    ``downsamples`` (image models) is how often the model halves the resolution, so it needs
    images of at least ``2 ** downsamples`` pixels a side. A duplicate name is a ConfigError.

    Example (in a family module, so that importing ``ticketlab.models`` registers it)::

        @register_model("tiny_mlp", kind="vector")
        def tiny_mlp(spec: DataSpec, hidden: int = 8) -> nn.Module:
            '''A one-hidden-layer MLP.'''
            return MLP(math.prod(spec.input_shape), (hidden,), spec.num_classes)
    """
    if kind not in KINDS:
        raise ConfigError(f"model kind '{kind}' of '{name}' is not one of {', '.join(KINDS)}")

    def deco(fn: Factory) -> Factory:
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        info = ModelInfo(name, kind, doc, 2**downsamples if kind == "image" else 1)
        _MODELS.register(name)(_Entry(fn, info, downsamples))
        return fn

    return deco


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style pattern, in registration order.

    Example:
        >>> list_models("conv*")
        ['conv2', 'conv4', 'conv6']
    """
    return _MODELS.list(pattern)


def get_model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of model ``name`` (UnknownNameError lists the choices).

    Example:
        >>> get_model_info("gcn").kind
        'graph'
    """
    return _MODELS.get(name).info


def _datasets_of_kind(kind: str) -> str:
    """The registered data sets of ``kind`` (``"graph"`` or ``"tensor"``), for an error message."""
    from ticketlab.data import get_dataset_info, list_datasets

    return ", ".join(n for n in list_datasets() if get_dataset_info(n).kind == kind)


def _check_compatible(entry: _Entry, spec: DataSpec) -> None:
    info = entry.info
    if info.kind == "graph":
        if spec.kind != "graph":
            raise IncompatibleError(
                f"model '{info.name}' needs a graph data set ({_datasets_of_kind('graph')}), but '{spec.name}' "
                f"is a {spec.kind} data set"
            )
        return
    if spec.kind != "tensor":
        raise IncompatibleError(
            f"model '{info.name}' needs a tensor data set ({_datasets_of_kind('tensor')}), but '{spec.name}' "
            f"is a {spec.kind} data set"
        )
    if info.kind == "image":
        shape = tuple(spec.input_shape)
        if len(shape) != 3:
            raise IncompatibleError(
                f"model '{info.name}' needs images of shape (C, H, W), but '{spec.name}' has "
                f"input shape {shape}"
            )
        if min(shape[1:]) < info.min_size:
            raise IncompatibleError(
                f"model '{info.name}' needs images of at least {info.min_size}x{info.min_size} "
                f"(it halves the resolution {entry.downsamples} times); '{spec.name}' has "
                f"{shape[1]}x{shape[2]}"
            )


def create_model(
    name: str, spec: DataSpec, *, seed: int | None = None, init: str | None = None,
    zero_bias: bool = False, **kwargs: Any
) -> nn.Module:
    """Build model ``name`` for data described by ``spec``.

    With ``seed`` the initial parameters are a pure function of ``(name, spec, kwargs, seed)``
    and the caller's global RNG is left untouched; without it the global RNG is used.
    ``init`` re-initialises the prunable weights (``kaiming_normal`` as in open_lth,
    ``xavier_normal`` = the Gaussian Glorot init of Frankle & Carbin 2019, ...); ``None`` keeps
    PyTorch's defaults. ``zero_bias`` sets every bias to zero (the Synaptic-Flow reference
    models, Tanaka et al. 2020). Raises IncompatibleError when the model does not fit the data,
    ConfigError for an unknown option and UnknownNameError for an unknown name.

    Example:
        >>> spec = DataSpec("cifar10", "tensor", (3, 32, 32), 10)
        >>> model = create_model("conv2", spec, seed=0)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    entry = _MODELS.get(name)
    _check_compatible(entry, spec)
    if init is not None and init not in INITS:
        raise ConfigError(f"init '{init}' is not one of {', '.join(INITS)}")
    validate_model_config(name, spec, {**kwargs, **({"zero_bias": zero_bias} if zero_bias else {})})
    if seed is None:
        return _build(entry, spec, init, zero_bias, kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build(entry, spec, init, zero_bias, kwargs)


#: Largest width, channel count or hidden size one option of a model may ask for.
MAX_WIDTH = 2**20
#: Most layers a sequence option of a model (hidden widths, fc widths) may list.
MAX_LAYERS = 64


def validate_model_config(name: str, spec: DataSpec, config: dict[str, Any]) -> int:
    """Check a model configuration against the registry before anything is allocated; return the
    number of parameters (and buffer values) the model would hold.

    ``config`` is what :func:`create_model` takes besides ``spec`` and ``seed`` (a ticket's
    provenance ``model_config``): every key must be an option of the model's factory (or ``init``,
    ``zero_bias``), of the type of its default (a whole number, a list of at most
    :data:`MAX_LAYERS` whole numbers in ``1..MAX_WIDTH``, a flag, a finite number; ``dropout`` in
    [0, 1)). The model is then built on the ``meta`` device, which allocates no storage, and its
    size is checked against limit ``model_params`` (``TICKETLAB_LIMIT_MODEL_PARAMS``). Every
    :func:`create_model` call goes through this, so every command that rebuilds a model from a
    ticket (``train``, ``evaluate``, ``barrier``, ``sanity``, ``import --model``, a study) does.

    Example:
        >>> spec = DataSpec("digits", "tensor", (1, 8, 8), 10)
        >>> validate_model_config("lenet_300_100", spec, {})
        50610
        >>> validate_model_config("lenet_300_100", spec, {"hidden": [10**6, 10**6]})
        Traceback (most recent call last):
        ...
        ticketlab.limits.LimitError: model 'lenet_300_100' with {'hidden': [1000000, 1000000]} would hold 1,000,076,000,010 parameters, more than the limit of 50,000,000 (raise it with TICKETLAB_LIMIT_MODEL_PARAMS=N)
    """
    from ticketlab import limits

    entry = _MODELS.get(name)
    _check_compatible(entry, spec)
    if not isinstance(config, dict):
        raise ConfigError(f"model '{name}': its configuration is a {type(config).__name__}, not a table of options")
    signature = inspect.signature(entry.factory)
    options = {k: p.default for k, p in list(signature.parameters.items())[1:]}
    shown = _short(config)
    for key, value in config.items():
        if key == "init":
            if value is not None and value not in INITS:
                raise ConfigError(f"model '{name}': init {_short(value)} is not one of {', '.join(INITS)}")
            continue
        if key not in options and key != "zero_bias":
            known = ", ".join([*options, "init", "zero_bias"])
            shown_key = key if isinstance(key, str) and key.isidentifier() else _short(key)
            raise ConfigError(f"model '{name}' has no option {shown_key} (options: {known})")
        problem = _option_problem(key, value, False if key == "zero_bias" else options[key])
        if problem:
            raise ConfigError(f"model '{name}' option {key} {problem}, not {_short(value)}")
    kwargs = {k: v for k, v in config.items() if k not in ("init", "zero_bias")}
    try:
        with torch.device("meta"):
            model = entry.factory(spec, **kwargs)
        count = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001  (a factory's own complaint about a shape, say)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"model '{name}' cannot be built with {shown}: {reason}") from None
    limits.check("model_params", count, f"model '{name}' with {shown} would hold {count:,} parameters")
    return count


def _option_problem(key: str, value: Any, default: Any) -> str | None:
    """Why ``value`` does not fit an option whose default is ``default`` (``None`` when it fits)."""
    import math

    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_WIDTH

    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int):
        return None if whole(value) else f"must be a whole number in 1..{MAX_WIDTH:,}"
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return "must be a finite number"
        if key == "dropout" and not 0 <= value < 1:
            return "must be in [0, 1)"
        return None
    if isinstance(default, (tuple, list)):
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_LAYERS or not all(map(whole, value)):
            return f"must be a list of 1 to {MAX_LAYERS} whole numbers in 1..{MAX_WIDTH:,}"
        return None
    return None if value is None or isinstance(value, (str, int, float, bool)) else "must be a plain value"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _build(entry: _Entry, spec: DataSpec, init: str | None, zero_bias: bool, kwargs: dict[str, Any]) -> nn.Module:
    model = entry.factory(spec, **kwargs)
    with torch.no_grad():
        if init is not None:
            fn = getattr(nn.init, init + "_")
            for weight in prunable_parameters(model).values():
                fn(weight)
        if zero_bias:  # every bias (batch norm's already starts at zero)
            for pname, p in model.named_parameters():
                if pname.rsplit(".", 1)[-1] == "bias":
                    p.zero_()
    return model


# ---------------------------------------------------------------------------------------------
# Prunable parameters
# ---------------------------------------------------------------------------------------------


def _prunable_modules(model: nn.Module) -> dict[int, tuple[str, nn.Parameter]]:
    """id(weight) -> (edge kind, weight) for every prunable layer of ``model``."""
    dense = (nn.Linear,)
    pyg = sys.modules.get("torch_geometric.nn.dense.linear")  # only present if PyG is in use
    if pyg is not None:
        dense = (nn.Linear, pyg.Linear)
    gcn_mod = sys.modules.get("torch_geometric.nn.conv.gcn_conv")
    found: dict[int, tuple[str, nn.Parameter]] = {}
    for module in model.modules():
        if gcn_mod is not None and isinstance(module, gcn_mod.GCNConv):
            found[id(module.lin.weight)] = ("gcn", module.lin.weight)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            found[id(module.weight)] = ("conv", module.weight)
        elif isinstance(module, dense) and id(module.weight) not in found:
            found[id(module.weight)] = ("linear", module.weight)
    return found


def prunable_parameters(
    model: nn.Module, *, first_layer: bool = True, last_layer: bool = True
) -> dict[str, nn.Parameter]:
    """The weights of the Linear, Conv1d/Conv2d and GCN layers, in ``named_parameters`` order.

    Biases and batch-norm parameters are never included. ``first_layer=False`` /
    ``last_layer=False`` leave out the first / last of them (pruning-at-init studies often keep
    those dense).

    Example:
        >>> spec = DataSpec("digits", "tensor", (1, 8, 8), 10)
        >>> list(prunable_parameters(create_model("lenet_300_100", spec), last_layer=False))
        ['fc1.weight', 'fc2.weight']
    """
    found = _prunable_modules(model)
    names = [(n, p) for n, p in model.named_parameters() if id(p) in found]
    if not first_layer:
        names = names[1:]
    if not last_layer:
        names = names[:-1]
    return dict(names)


# ---------------------------------------------------------------------------------------------
# Topology
# ---------------------------------------------------------------------------------------------


def model_topology(model: nn.Module, spec: DataSpec) -> dict[str, Any]:
    """The model's wiring as a JSON-serialisable layered graph (format: common brief / README).

    ``tensors`` maps an activation tensor to its unit count (neurons or channels); each prunable
    weight is exactly one edge ``{"param", "src", "dst", "kind", "group"}``; residual shortcuts
    are ``{"identity": True, "src", "dst"}`` edges. A model with a ``topology(spec)`` method
    (ResNets) describes itself; any other model is read as a chain of its prunable layers in
    parameter order, where a linear layer after a conv layer reads the flattened feature map
    (``group`` = in_features / channels columns per channel).

    Example:
        >>> spec = DataSpec("digits", "tensor", (1, 8, 8), 10)
        >>> topo = model_topology(create_model("conv2", spec), spec)
        >>> topo["edges"][2]
        {'param': 'fc1.weight', 'src': 't2', 'dst': 't3', 'kind': 'linear', 'group': 16, 'shape': [256, 1024]}
    """
    if callable(getattr(model, "topology", None)):
        topo = model.topology(spec)
    else:
        topo = _chain_topology(model, spec)
    _check_topology(model, topo)
    params = prunable_parameters(model)
    for e in topo["edges"]:  # the full weight shape lets metrics count unmasked weights exactly
        if not e.get("identity"):
            e["shape"] = [int(d) for d in params[e["param"]].shape]
    return topo


def _chain_topology(model: nn.Module, spec: DataSpec) -> dict[str, Any]:
    kinds = {id(p): kind for kind, p in _prunable_modules(model).values()}
    params = prunable_parameters(model)
    if not params:
        raise IncompatibleError("the model has no prunable layers, so it has no topology")
    tensors: dict[str, int] = {}
    edges: list[dict[str, Any]] = []
    src, src_kind = "input", None
    for i, (name, weight) in enumerate(params.items(), start=1):
        kind = kinds[id(weight)]
        out_units, in_cols = int(weight.shape[0]), int(weight.shape[1])
        if i == 1:
            tensors[src] = in_cols  # first layer: its inputs are the input tensor's units
        group = 1
        if kind == "linear" and src_kind == "conv":
            group = in_cols // tensors[src]  # flattened (C, H, W): H*W columns per channel
        elif kind == "conv" and src_kind in ("linear", "gcn"):
            raise IncompatibleError(f"cannot derive a topology: conv '{name}' follows a dense layer")
        if group * tensors[src] != in_cols:
            raise IncompatibleError(
                f"cannot derive a topology: '{name}' has {in_cols} inputs but '{src}' has "
                f"{tensors[src]} units"
            )
        dst = f"t{i}"
        tensors[dst] = out_units
        edges.append({"param": name, "src": src, "dst": dst, "kind": kind, "group": group})
        src, src_kind = dst, kind
    return {"tensors": tensors, "edges": edges, "input": "input", "output": src}


def _check_topology(model: nn.Module, topo: dict[str, Any]) -> None:
    """Internal consistency check; a failure is a bug in a model's ``topology`` method."""
    params = prunable_parameters(model)
    units = topo["tensors"]
    seen = []

    def need(ok: bool, what: object) -> None:
        if not ok:
            raise RuntimeError(f"inconsistent topology for {type(model).__name__}: {what}")

    need(topo["input"] in units and topo["output"] in units, "unknown input/output tensor")
    for e in topo["edges"]:
        need(e["src"] in units and e["dst"] in units, e)
        if e.get("identity"):
            need(units[e["src"]] == units[e["dst"]], e)
            continue
        w = params.get(e["param"])
        need(w is not None, e)
        need(w.shape[0] == units[e["dst"]] and w.shape[1] == units[e["src"]] * e["group"], e)
        seen.append(e["param"])
    need(sorted(seen) == sorted(params), "every prunable parameter must be exactly one edge")
