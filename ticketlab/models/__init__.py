"""Model architectures, built for a data set by name.

Importing this package registers every family (one file each): ``lenet_300_100`` (mlp.py),
``conv2/4/6`` (convnets.py), ``lenet5``, ``vgg11/16/19``, ``resnet20/32/44/56/18``, ``simple_cnn`` and
``gcn``.

Example:
    >>> from ticketlab.data.base import DataSpec
    >>> spec = DataSpec("cifar10", "tensor", (3, 32, 32), 10)
    >>> model = create_model("resnet20", spec, seed=0)
    >>> round(sum(p.numel() for p in prunable_parameters(model).values()) / 1e6, 2)
    0.27
"""

from ticketlab.models.registry import (
    INITS,
    KINDS,
    ModelInfo,
    create_model,
    get_model_info,
    list_models,
    model_topology,
    prunable_parameters,
    register_model,
)

# Family modules register their models on import; the order here is the order of list_models().
from ticketlab.models import mlp, lenet5, convnets, simple_cnn, vgg, resnet, gcn  # noqa: E402,F401  isort:skip

__all__ = [
    "INITS",
    "KINDS",
    "ModelInfo",
    "create_model",
    "get_model_info",
    "list_models",
    "model_topology",
    "prunable_parameters",
    "register_model",
]
