"""Elastic lottery tickets: move a ticket to another depth of the CIFAR ResNet family without mining.

Chen, Cheng, Wang, Gan, Liu & Wang 2021, "The Elastic Lottery Ticket Hypothesis" (NeurIPS),
Sec. 3 and Fig. 2: a ticket found on one ResNet is *stretched* to a deeper one by replicating
residual blocks, or *squeezed* to a shallower one by dropping them, within each stage (their
*Elastic Ticket Transformation*). ``transfer(ticket, model="resnet32")`` does this for
``resnet20``, ``resnet32``, ``resnet44`` and ``resnet56`` (:data:`ticketlab.models.resnet.CIFAR_RESNETS`).

What is moved, as in the paper's code (``VITA-Group/ElasticLTH``, ``lottery/branch/morphism.py``,
``change_depth_cifar_resnet``, which copies the state dict key by key):

* the **stem** (``conv1``) and the **head** (``fc``) are copied unchanged;
* **block 0 of every stage** (the downsampling block of stages 2 and 3, with its 1x1 shortcut
  conv) is always kept and maps to block 0, never replicated or dropped (the paper's Fig. 2
  hides it for that reason);
* the other blocks of a stage follow the rule of :func:`block_sources`, the same in every stage;
* the masks, and the stored ``init`` weights by the same map (the paper moves the source's
  weights at its rewinding point along with the mask, so that the target starts from them);
  biases and batch norm, which no snapshot stores, come from the target model built with the
  ticket's seed when it is trained (batch norm starts at 1 and 0 in both; the classifier's bias
  is the target model's own draw, where the paper copies the source's).

The default rule (``"elastic_inter"``, :func:`block_sources`) is the one the authors' scripts
run as ``mapping_inter`` for ResNets on CIFAR-10: stretching replicates each block into
consecutive copies, the first blocks getting one copy more when the count does not divide
(20 -> 32: ``0:0;1:1,2;2:3,4``; 32 -> 44: ``0:0;1:1,2;2:3,4;3:5;4:6``); squeezing keeps every
k-th block, evenly spaced from block 1 (32 -> 20: ``0:0;1:1;3:2``; 44 -> 32: ``0:0;1:1;2:2;3:3;5:4``).
Squeezing undoes stretching exactly when the target's blocks per stage minus one are a multiple
of the source's (20 <-> 32, 44, 56 and 32 <-> 56); 32 -> 44 -> 32 and 44 -> 56 -> 44 do not give
the source back. An explicit ``mapping`` in the paper's own syntax (``"0:0;1:1,2;2:3,4"``,
source block: target blocks, the same for every stage) runs any of their other strategies.

The new ticket records the rule, the map of every target block to its source block and the
exact counts of both tickets in ``provenance["transforms"]`` (a ``"transfer"`` record, after any
earlier transforms), and its own model, topology, counts and health at the top level. The
source's ``final`` weights, scores and history belong to the source network and are dropped.

Example:
    >>> import numpy as np
    >>> block_sources(3, 5), block_sources(5, 3)
    ([0, 1, 1, 2, 2], [0, 1, 3])
    >>> block_sources(3, 5, mapping="0:0;1:1,3;2:2,4")
    [0, 1, 2, 1, 2]
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any, Mapping

import numpy as np

from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.ticket import Ticket

#: Name of the default rule in the provenance (the authors' ``mapping_inter``).
RULE = "elastic_inter"
#: Where the rule comes from, as the provenance records it.
REFERENCE = ("Chen et al. 2021, The Elastic Lottery Ticket Hypothesis (NeurIPS), Sec. 3, Elastic Ticket "
             "Transformation; block 0 of each stage kept; code: VITA-Group/ElasticLTH, "
             "lottery/branch/morphism.py change_depth_cifar_resnet")
_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)")
_MAPPING = re.compile(r"\d+:\d+(,\d+)*(;\d+:\d+(,\d+)*)*")


def _family() -> dict[str, int]:
    from ticketlab.models.resnet import CIFAR_RESNETS

    return CIFAR_RESNETS


def _not_in_family(what: str, name: Any) -> ConfigError:
    members = ", ".join(_family())
    return ConfigError(f"transfer moves tickets between depths of the CIFAR ResNet family ({members}); "
                       f"{what} is {name!r}")


def block_sources(src_blocks: int, dst_blocks: int, *, mapping: str | None = None) -> list[int]:
    """For each block of a target stage (``dst_blocks`` of them), the source block it is copied from.

    Block 0 always comes from block 0. Of the others (``m = src_blocks - 1`` in the source,
    ``M = dst_blocks - 1`` in the target; Chen et al. 2021, Sec. 3, the authors' ``mapping_inter``):

    * **stretch** (``M >= m``): source block ``i`` fills a run of consecutive target blocks; the
      runs have ``M // m`` blocks, the first ``M % m`` of them one more;
    * **squeeze** (``M < m``): the source blocks ``1..m`` form ``M`` consecutive groups of
      ``m // M``, the last ``m % M`` groups one more; the first block of each group is kept.

    ``mapping`` gives the map explicitly instead, in the paper code's syntax: ``"s:t1,t2;..."``
    (source block ``s`` is copied to target blocks ``t1, t2``); it must send 0 to 0 and give
    every target block exactly one source.

    Example:
        >>> block_sources(3, 9), block_sources(9, 5), block_sources(7, 5)
        ([0, 1, 1, 1, 1, 2, 2, 2, 2], [0, 1, 3, 5, 7], [0, 1, 2, 3, 5])
    """
    for what, n in (("source", src_blocks), ("target", dst_blocks)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"a stage of the {what} has {n!r} blocks; it needs at least 1")
    if mapping is not None:
        return _parse_mapping(mapping, src_blocks, dst_blocks)
    m, big_m = src_blocks - 1, dst_blocks - 1
    if big_m == 0:
        return [0]
    if m == 0:
        raise ConfigError(f"cannot stretch a stage of 1 block to {dst_blocks}: only block 0 is there, "
                          "and it is never replicated")
    out = [0]
    if big_m >= m:  # stretch: each block into consecutive copies, the first M % m runs one longer
        q, r = divmod(big_m, m)
        for i in range(m):
            out += [1 + i] * (q + (1 if i < r else 0))
    else:  # squeeze: M groups, the last m % M one longer; keep the first block of each
        q, r = divmod(m, big_m)
        start = 1
        for g in range(big_m):
            out.append(start)
            start += q + (1 if g >= big_m - r else 0)
    return out


def _parse_mapping(text: str, src_blocks: int, dst_blocks: int) -> list[int]:
    if not isinstance(text, str) or not _MAPPING.fullmatch(text.replace(" ", "")):
        raise ConfigError(f"mapping {text!r} is not of the form 'SRC:TGT,TGT;SRC:TGT' (e.g. '0:0;1:1,2;2:3,4')")
    sources: dict[int, int] = {}
    for part in text.replace(" ", "").split(";"):
        src_text, targets = part.split(":")
        src = int(src_text)
        if src >= src_blocks:
            raise ConfigError(f"mapping {text!r} names source block {src}, but a source stage has blocks "
                              f"0..{src_blocks - 1}")
        for t in map(int, targets.split(",")):
            if t >= dst_blocks:
                raise ConfigError(f"mapping {text!r} names target block {t}, but a target stage has blocks "
                                  f"0..{dst_blocks - 1}")
            if t in sources:
                raise ConfigError(f"mapping {text!r} gives target block {t} two sources")
            if (src == 0) != (t == 0):
                raise ConfigError(f"mapping {text!r} must send block 0 (each stage's downsampling block) to "
                                  "block 0 and nothing else there")
            sources[t] = src
    missing = [t for t in range(dst_blocks) if t not in sources]
    if missing:
        raise ConfigError(f"mapping {text!r} gives target block {missing[0]} no source")
    return [sources[t] for t in range(dst_blocks)]


def parameter_sources(src_model: str, dst_model: str, names: list[str], *,
                      mapping: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """``(param_map, block_map)``: for each parameter name of ``dst_model`` in ``names``, the
    parameter of ``src_model`` it is copied from; and for each target block (``"blocks.i"``) its
    source block. Stem and head map to themselves.

    Example:
        >>> params, blocks = parameter_sources("resnet20", "resnet32", ["conv1.weight", "blocks.4.conv1.weight"])
        >>> params, blocks["blocks.5"]
        ({'conv1.weight': 'conv1.weight', 'blocks.4.conv1.weight': 'blocks.2.conv1.weight'}, 'blocks.3')
    """
    family = _family()
    if src_model not in family:
        raise _not_in_family("the ticket's model", src_model)
    if dst_model not in family:
        raise _not_in_family("the target model", dst_model)
    from ticketlab.models.resnet import CIFAR_STAGES

    n_src, n_dst = family[src_model], family[dst_model]
    local = block_sources(n_src, n_dst, mapping=mapping)
    block_map = {f"blocks.{s * n_dst + j}": f"blocks.{s * n_src + i}"
                 for s in range(CIFAR_STAGES) for j, i in enumerate(local)}
    params: dict[str, str] = {}
    for name in names:
        match = _BLOCK.fullmatch(name)
        params[name] = f"{block_map['blocks.' + match.group(1)]}.{match.group(2)}" if match else name
    return params, block_map


def _spec(prov: Mapping[str, Any]) -> Any:
    from ticketlab.data import get_dataset_info
    from ticketlab.data.base import DataSpec

    recorded = prov.get("data_spec")
    if isinstance(recorded, dict):
        try:
            return DataSpec(str(recorded["name"]), str(recorded["kind"]), tuple(int(d) for d in recorded["input_shape"]),
                            int(recorded["num_classes"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError("the ticket's provenance data_spec is not a data spec (name, kind, input_shape, "
                              "num_classes)") from None
    dataset = prov.get("dataset")
    spec = get_dataset_info(str(dataset)).spec if isinstance(dataset, str) else None
    if spec is None:
        raise ConfigError("transfer needs the shape of the ticket's data: its provenance has no data_spec and no "
                          "data set with a fixed shape")
    return spec


def _skeleton(model: str, spec: Any, config: Mapping[str, Any]) -> tuple[Any, dict[str, tuple[int, ...]]]:
    """The model on the meta device (no storage) and its prunable parameters' shapes."""
    import torch

    from ticketlab.models import create_model, prunable_parameters

    kwargs = {k: v for k, v in config.items() if k not in ("init", "zero_bias")}
    with torch.device("meta"):
        net = create_model(model, spec, **kwargs)
    return net, {n: tuple(p.shape) for n, p in prunable_parameters(net).items()}


def transfer(ticket: Ticket | str | os.PathLike[str], model: str, *, mapping: str | None = None,
             weights: bool = True) -> Ticket:
    """The ticket moved to ``model``, another depth of the CIFAR ResNet family (module docstring).

    Args:
        ticket: a ticket of ``resnet20``, ``resnet32``, ``resnet44`` or ``resnet56``, or the path of
            its file (read, never written); its provenance names the model, and its masks must fit
            that model with the recorded options.
        model: the target depth's registry name.
        mapping: an explicit block map in the paper code's syntax (:func:`block_sources`);
            default the rule of :func:`block_sources`.
        weights: move the stored ``init`` weights too (the paper's transformation); False keeps
            the masks only, so that training starts from the target model's own draw.

    Raises a one-line :class:`ConfigError` for a model outside the family or a bad mapping and an
    :class:`IncompatibleError` when the masks do not fit the model the provenance names.

    Example:
        >>> from ticketlab.data.base import DataSpec
        >>> spec = {"name": "digits", "kind": "tensor", "input_shape": [1, 8, 8], "num_classes": 10}
        >>> _, shapes = _skeleton("resnet20", DataSpec("digits", "tensor", (1, 8, 8), 10), {"width": 2})
        >>> t = Ticket(masks={n: np.ones(s, bool) for n, s in shapes.items()},
        ...            provenance={"model": "resnet20", "model_config": {"width": 2}, "data_spec": spec})
        >>> t32 = transfer(t, "resnet32")
        >>> len(t32.masks), t32.provenance["transforms"][-1]["blocks"]["blocks.4"]
        (34, 'blocks.2')
    """
    if isinstance(ticket, (str, os.PathLike)):
        from ticketlab.fileformat import load

        ticket = load(ticket, scores=False, history=False)
    if not isinstance(ticket, Ticket):
        raise ConfigError(f"transfer takes a Ticket or a ticket file, not a {type(ticket).__name__}")
    from ticketlab.metrics.health import PROVENANCE_KEY as HEALTH_KEY, health
    from ticketlab.models import model_topology
    from ticketlab.transforms import recorded_transforms

    prov = ticket.provenance
    src_model = prov.get("model")
    if src_model is None:
        raise ConfigError("transfer needs the ticket's model, and its provenance names none")
    family = _family()
    if src_model not in family:
        raise _not_in_family("the ticket's model", src_model)
    if model not in family:
        raise _not_in_family("the target model", model)
    config = prov.get("model_config") or {}
    if not isinstance(config, dict):
        raise ConfigError("the ticket's provenance model_config is not a table")
    spec = _spec(prov)
    _, src_shapes = _skeleton(src_model, spec, config)
    for name, mask in ticket.masks.items():  # the masks must be the model the provenance names
        if name not in src_shapes:
            raise IncompatibleError(f"mask '{name}' names no prunable weight of '{src_model}' (with {config or 'its defaults'})")
        if tuple(mask.shape) != src_shapes[name]:
            raise IncompatibleError(f"mask '{name}' has shape {tuple(mask.shape)}, but '{src_model}' (with "
                                    f"{config or 'its defaults'}) has {src_shapes[name]}")
    dst_net, dst_shapes = _skeleton(model, spec, config)
    sources, blocks = parameter_sources(src_model, model, list(dst_shapes), mapping=mapping)
    # the target's prunable weights in model order, each masked iff its source is
    masks = {n: ticket.masks[s].copy() for n, s in sources.items() if s in ticket.masks}
    init = ticket.weights.get("init") if weights else None
    new_weights = {"init": {n: np.array(init[sources[n]], copy=True) for n in masks}} if init else {}

    kept = {n: int(np.count_nonzero(m)) for n, m in masks.items()}
    total = int(sum(m.size for m in masks.values()))
    record: dict[str, Any] = {
        "name": "transfer",
        "rule": RULE if mapping is None else "explicit",
        **({"mapping": mapping} if mapping is not None else {}),
        "reference": REFERENCE,
        "from_model": src_model, "to_model": model,
        "blocks_per_stage": [family[src_model], family[model]],
        "direction": ("stretch" if family[model] > family[src_model] else
                      "squeeze" if family[model] < family[src_model] else "same depth"),
        "blocks": blocks,  # target block -> source block
        "copied_unchanged": [n for n in masks if not n.startswith("blocks.")],  # stem and head
        "weights": "init moved by the same map" if new_weights else "none (masks only)",
        "source_kept": ticket.kept, "source_total": ticket.total, "source_density": ticket.density,
        "kept": sum(kept.values()), "total": total, "density": sum(kept.values()) / total if total else 0.0,
    }
    new = copy.deepcopy(prov)
    for key in ("test_accuracy", "target_density", "target_kept", "trained_from"):  # the source's, not this one's
        if key in new:
            record[f"source_{key}"] = new.pop(key)
    new.pop(HEALTH_KEY, None)
    new["transforms"] = [*recorded_transforms(new), record]
    new.update(model=model, kept=record["kept"], total=total, achieved_density=record["density"], layer_kept=kept,
               collapsed=any(k == 0 for k in kept.values()), trained=False,
               topology=model_topology(dst_net, spec))
    out = Ticket(masks=masks, provenance=new, weights=new_weights)
    out.provenance[HEALTH_KEY] = health(out).to_dict()
    return out


__all__ = ["REFERENCE", "RULE", "block_sources", "parameter_sources", "transfer"]
