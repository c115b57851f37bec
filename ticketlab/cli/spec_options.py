"""``ticketlab mine``'s options, made from the spec's fields (no torch import).

Every field of :class:`~ticketlab.spec.MineSpec` (its parts' fields, by ``mine()``'s keyword:
:func:`ticketlab.spec.flat_fields`) is an option: ``train_epochs`` becomes ``--train-epochs``, with
the field's ``metadata["help"]`` as its help; a bool is a flag, a field with
``metadata["choices"]`` a choice, an int or float a number, a table or a list a JSON value. A field
added to the spec is an option, with its help, the next time the command is built.

:data:`FORMS` gives a few fields a handier form on the command line (``--schedule 0.8,0.5``:
densities, as ``mine(schedule=)`` takes them; ``--rate-multiplier output=0.5`` repeated;
``--init`` and ``--zero-bias`` for the model's options; the older spellings of the first/last-layer
flags); :data:`NOT_EXPOSED` names the fields that have no option of their own, and why. The options that are no spec field (where the ticket goes, the
device, the data's folder, checkpoints, ...: ``spec.RUN_OPTIONS``) stay hand-written in
:mod:`ticketlab.cli.mine`.

Example:
    >>> [p.name for p in spec_params()][:4]
    ['method', 'model', 'dataset', 'init']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import click

from ticketlab.cli.common import SEED, init_params, parse_train_options
from ticketlab.spec import MineSpec, SpecField, flat_fields

#: Spec fields (by ``mine()``'s keyword) with no option of their own, and why.
NOT_EXPOSED = {
    "miner_config": "the method's options are options of their own, one per field of its Config "
                    "(made from the registered miners, cli.mine._miner_options)",
}


@dataclass(frozen=True)
class Form:
    """How one spec field reads on the command line, where not as the generic option."""

    flags: tuple[str, ...] = ()  #: the option's flags (default: ``--keyword-dashed``); a flag's older spellings
    off: tuple[str, ...] = ()  #: a flag's flags that set it False (an older spelling's default)
    type: Any = None  #: click's type (default: from the field)
    metavar: str | None = None
    multiple: bool = False  #: repeatable; ``parse`` gets every value given, as a tuple
    required: bool = False
    parse: Callable[[Any], Any] | None = None  #: the option's text -> the field's value
    params: Callable[[], list[click.Parameter]] | None = None  #: several options instead of one ...
    collect: Callable[[dict[str, Any]], Any] | None = None  #: ... whose values (popped) make the field's


def parse_schedule(text: str) -> list[float]:
    """``--schedule``'s comma-separated densities, one per round: each in (0, 1], never increasing
    (masks only shrink), the last one the target, as ``mine(schedule=)`` takes them.

    Before, ``--schedule`` took cumulative sparsities (0.2,0.52,0.8); such a list increases, so it is
    refused with the densities it meant, never read silently as other densities.

    Example:
        >>> parse_schedule("0.8,0.48,0.2")
        [0.8, 0.48, 0.2]
        >>> try:
        ...     parse_schedule("0.2,0.5")
        ... except Exception as exc:
        ...     print(exc)
        option --schedule takes densities (fractions kept) now, not sparsities: 0.2,0.5 increases; as densities the same rounds are --schedule 0.8,0.5
    """
    import math

    from ticketlab.errors import ConfigError

    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"option --schedule needs comma-separated densities like 0.8,0.48,0.2, got '{text}'") from None
    if not values:
        raise ConfigError("option --schedule needs at least one density")
    rises = any(b > a for a, b in zip(values, values[1:]))
    if rises and all(0.0 <= v < 1.0 for v in values) and all(b >= a for a, b in zip(values, values[1:])):
        meant = ",".join(f"{1.0 - v:.10g}" for v in values)  # an old list of cumulative sparsities
        raise ConfigError(f"option --schedule takes densities (fractions kept) now, not sparsities: {text} increases; "
                          f"as densities the same rounds are --schedule {meant}")
    for v in values:
        if not 0.0 < v <= 1.0 or math.isnan(v):
            raise ConfigError(f"option --schedule densities must be in (0, 1], got {v}")
    if rises:
        raise ConfigError(f"option --schedule densities must not increase (masks only shrink), got {text}")
    return values


def _multipliers(texts: tuple[str, ...]) -> dict[str, float] | None:
    from ticketlab.schedules import parse_multipliers

    return parse_multipliers(texts) if texts else None


def _model_options(values: dict[str, Any]) -> dict[str, Any]:
    """``--init`` and ``--zero-bias`` (popped from ``values``): the model constructor's options."""
    init, zero_bias = values.pop("init"), values.pop("zero_bias")
    return {**({"init": init} if init is not None else {}), **({"zero_bias": True} if zero_bias else {})}


#: The fields whose option is not the generic one (see the module docstring).
FORMS: dict[str, Form] = {
    "method": Form(flags=("-m", "--method"), required=True),
    "model_kwargs": Form(params=init_params, collect=_model_options),
    "schedule": Form(metavar="D1,D2,...", parse=parse_schedule),
    "rate_multipliers": Form(flags=("--rate-multiplier",), metavar="LAYER=FACTOR", multiple=True, parse=_multipliers),
    # the other count rules are the reference protocols', which their method picks (Miner.round_count_rule)
    "count_rule": Form(type=click.Choice(["exact", "threshold"])),
    "skip_first_layer": Form(flags=("--skip-first-layer", "--no-prune-first-layer"), off=("--prune-first-layer",)),
    "skip_last_layer": Form(flags=("--skip-last-layer", "--no-prune-last-layer"), off=("--prune-last-layer",)),
    "train_options": Form(flags=("--train-option",), metavar="KEY=VALUE", multiple=True, parse=parse_train_options),
    "track_masks": Form(type=click.IntRange(min=1), metavar="EVERY"),
    "early_bird": Form(type=click.FloatRange(min=0), metavar="EPS"),
    "seed": Form(type=SEED),
}


def spec_params(spec_cls: type = MineSpec) -> list[click.Parameter]:
    """One option per field of ``spec_cls`` (except :data:`NOT_EXPOSED`), in the spec's order."""
    out: list[click.Parameter] = []
    for key, spec_field in flat_fields(spec_cls).items():
        if key in NOT_EXPOSED:
            continue
        form = FORMS.get(key, Form())
        out += form.params() if form.params is not None else [_option(key, spec_field, form)]
    return out


def spec_values(spec_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The spec's fields by ``mine()``'s keyword, popped from a command's parsed ``values``
    (:func:`spec_params`' options); what is left is the command's own."""
    out: dict[str, Any] = {}
    for key in flat_fields(spec_cls):
        if key in NOT_EXPOSED:
            continue
        form = FORMS.get(key, Form())
        out[key] = form.collect(values) if form.collect is not None else values.pop(key)
    return out


def _option(key: str, spec_field: SpecField, form: Form) -> click.Option:
    f = spec_field.field
    help_text = f.metadata.get("help", "") + ("  (repeatable)" if form.multiple else "")
    flags = list(form.flags or (f"--{key.replace('_', '-')}",))
    if spec_field.kind is bool:
        if form.off:
            return click.Option([f"{flags[0]}/{form.off[0]}", *flags[1:], *form.off[1:], key], default=False,
                                help=help_text)
        return click.Option([*flags, key], is_flag=True, default=False, help=help_text)
    choices = f.metadata.get("choices")
    typ = form.type or (click.Choice(list(choices)) if choices else None) or \
        (spec_field.kind if spec_field.kind in (int, float) else str)
    has_default = f.default is not dataclasses.MISSING and f.default is not None
    parse = form.parse or (None if spec_field.kind in (str, int, float) else _json_value(key, spec_field.kind))
    default = {"default": f.default, "show_default": True} if has_default else {}  # none: a required one is missing
    return click.Option([*flags, key], type=typ, required=form.required, metavar=form.metavar, multiple=form.multiple,
                        callback=_callback(parse) if parse is not None else None, help=help_text, **default)


def _callback(parse: Callable[[Any], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return None if value is None else parse(value)
    return callback


def _json_value(key: str, kind: type) -> Callable[[str], Any]:
    """A parser of a table's or a list's option: its value as JSON (checked for depth)."""
    def parse(text: str) -> Any:
        from ticketlab.bounded import Refused, parse_json
        from ticketlab.errors import ConfigError

        what = "a JSON table like {\"a\": 1}" if kind is dict else "a JSON list like [1, 2]"
        try:
            value = parse_json(text)
        except Refused:
            value = None
        if not isinstance(value, dict if kind is dict else list):
            raise ConfigError(f"option --{key.replace('_', '-')} needs {what}, got '{text}'")
        return value
    return parse
