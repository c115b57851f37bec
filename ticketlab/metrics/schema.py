"""The JSON Schema of ``compare``'s output (and ``ticketlab compare --json``), and a validator.

``COMPARE_SCHEMA`` is a JSON Schema (draft 2020-12) dict; docs/compare_schema.md shows it with
an explanation of every field. :func:`validate_records` checks a document against it without
the ``jsonschema`` package (it implements the subset the schema uses: ``type``, ``required``,
``properties``, ``additionalProperties``, ``items``, ``minLength``, ``minimum``, ``maximum``).

Example:
    >>> validate_records([{"a": "x.h5", "b": None, "metric": "density", "layer": "__total__", "value": 0.1}])
"""

from __future__ import annotations

from typing import Any

_NUM = {"type": ["number", "null"]}
_PROB = {"type": ["number", "null"], "minimum": 0, "maximum": 1}

#: JSON Schema of the list of records returned by :func:`ticketlab.metrics.compare`.
COMPARE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://ticketlab.invalid/schemas/compare-v1.json",
    "title": "ticketlab compare records",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["a", "b", "metric", "layer", "value"],
        "additionalProperties": False,
        "properties": {
            "a": {"type": "string", "minLength": 1, "description": "label of the (first) ticket"},
            "b": {"type": ["string", "null"], "description": "label of the second ticket; null for single-ticket metrics"},
            "metric": {"type": "string", "minLength": 1, "description": "registered metric name"},
            "layer": {"type": "string", "minLength": 1,
                      "description": "__total__, __mean__, __wmean__, a parameter name or a tensor name"},
            "value": {**_NUM, "description": "the metric's value; null when undefined"},
            "expected": {**_NUM, "description": "value expected by chance (per-layer null)"},
            "lift": {**_NUM, "description": "value / expected"},
            "z": {**_NUM, "description": "standard score of the overlap under the per-layer null"},
            "p": {**_PROB, "description": "one-sided P(overlap >= observed) under the per-layer null"},
            "p_two_sided": {**_PROB, "description": "two-sided p-value under the per-layer null"},
            "expected_global": {**_NUM, "description": "expected value under the global-density null"},
            "lift_global": {**_NUM, "description": "value / expected_global"},
            "z_global": {**_NUM, "description": "standard score under the global-density null"},
            "p_global": {**_PROB, "description": "one-sided p-value under the global-density null"},
            "expected_degree": {**_NUM, "description": "mean value under the degree-preserving null (null='degree')"},
            "lift_degree": {**_NUM, "description": "value / expected_degree"},
            "p_degree": {**_PROB, "description": "add-one empirical P(overlap >= observed) under the degree-preserving null"},
            "expected_aligned": {**_NUM, "description": "mean value of aligned random masks (align='masks'|'weights')"},
            "sd_aligned": {**_NUM, "description": "standard deviation of the value of aligned random masks"},
            "lift_aligned": {**_NUM, "description": "value / expected_aligned"},
            "p_aligned": {**_PROB, "description": "add-one empirical P(overlap >= observed) for aligned random masks"},
            "se": {**_NUM, "description": "standard error of a value that is a sampled estimate (relational metrics)"},
            "note": {"type": ["string", "null"], "description": "how to read the record"},
            "health_a": {"type": "string", "description": "ticket a is unhealthy: ticketlab.health's one-line summary"},
            "health_b": {"type": "string", "description": "ticket b is unhealthy: ticketlab.health's one-line summary"},
        },
    },
}

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _check(value: Any, schema: dict[str, Any], where: str) -> None:
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in types):
            raise ValueError(f"{where}: {value!r} is not of type {' or '.join(types)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where}: {value!r} is not a JSON number")
        if "minimum" in schema and value < schema["minimum"]:
            raise ValueError(f"{where}: {value!r} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ValueError(f"{where}: {value!r} is above the maximum {schema['maximum']}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        raise ValueError(f"{where}: the string is shorter than {schema['minLength']}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], f"{where}[{i}]")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise ValueError(f"{where}: required key '{key}' is missing")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                _check(item, props[key], f"{where}.{key}")
            elif schema.get("additionalProperties", True) is False:
                raise ValueError(f"{where}: unexpected key '{key}'")


def validate_records(document: Any, schema: dict[str, Any] | None = None) -> None:
    """Raise :class:`ValueError` (naming the first offending path) unless ``document`` matches
    ``schema`` (default :data:`COMPARE_SCHEMA`)."""
    _check(document, COMPARE_SCHEMA if schema is None else schema, "$")
