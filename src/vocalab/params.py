"""Typed, validated configuration read from params.yaml.

Each component owns a frozen dataclass; :func:`from_mapping` builds it from one
params section and refuses unknown keys, wrong types and out-of-range values with
a message that names the key, the bad value and what is allowed.

Ranges live in field metadata, built with :func:`bounded` and :func:`choice`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

import yaml

from vocalab.errors import ParamsError

T = TypeVar("T")

DEFAULT_PARAMS_FILE = "params.yaml"

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)\Z")


def check_device_param(name: str, section: str) -> None:
    """Refuse a ``device`` value that is none of auto, cpu, cuda, cuda:N."""
    if not _DEVICE_PATTERN.match(name):
        raise ParamsError(
            f"params key '{section}.device' = {name!r} is not allowed: use auto, cpu, cuda or cuda:N."
        )


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field with numeric bounds, checked by :func:`from_mapping`."""
    return dataclasses.field(
        default=default, metadata={"ge": ge, "gt": gt, "le": le, "lt": lt, "doc": doc}
    )


def nested(factory: Any) -> Any:
    """A dataclass field holding a nested config section."""
    return dataclasses.field(default_factory=factory)


def _describe_range(meta: Mapping[str, Any]) -> str:
    parts = []
    if meta.get("gt") is not None:
        parts.append(f"> {meta['gt']}")
    if meta.get("ge") is not None:
        parts.append(f">= {meta['ge']}")
    if meta.get("lt") is not None:
        parts.append(f"< {meta['lt']}")
    if meta.get("le") is not None:
        parts.append(f"<= {meta['le']}")
    return " and ".join(parts)


def _check_bounds(key: str, value: float, meta: Mapping[str, Any]) -> None:
    ok = True
    if meta.get("gt") is not None and not value > meta["gt"]:
        ok = False
    if meta.get("ge") is not None and not value >= meta["ge"]:
        ok = False
    if meta.get("lt") is not None and not value < meta["lt"]:
        ok = False
    if meta.get("le") is not None and not value <= meta["le"]:
        ok = False
    if not ok:
        raise ParamsError(
            f"params key '{key}' = {value!r} is out of range: it must be "
            f"{_describe_range(meta)}. Fix it in params.yaml (or your -S override)."
        )


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (tuple, list):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    """Return ``value`` as type ``tp`` or raise a ParamsError naming ``key``."""
    if tp is Any:  # a field its config checks itself (e.g. train.search, a grid per model)
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg, meta)
            except ParamsError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise ParamsError(
            f"params key '{key}' = {value!r} has the wrong type: expected {_type_name(tp)}."
        )
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            hint = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ParamsError(
                f"params key '{key}' = {value!r} is not allowed: choose one of "
                f"{', '.join(repr(a) for a in allowed)}.{did_you_mean}"
            )
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(
                f"params key '{key}' = {value!r} has the wrong type: expected a mapping such as {{a: b}}."
            )
        key_tp, value_tp = typing.get_args(tp)
        return {_coerce(f"{key} (a key)", k, key_tp, meta): _coerce(f"{key}.{k}", v, value_tp, meta)
                for k, v in value.items()}
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ParamsError(
                f"params key '{key}' = {value!r} has the wrong type: expected {_type_name(tp)}, "
                f"written as a YAML list such as [a, b]."
            )
        (item_tp,) = typing.get_args(tp)[:1]
        return tuple(_coerce(f"{key}[{i}]", v, item_tp, meta) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, section=key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(
                f"params key '{key}' = {value!r} has the wrong type: expected true or false."
            )
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ParamsError(
                    f"params key '{key}' = {value!r} has the wrong type: expected an integer."
                )
        _check_bounds(key, value, meta)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(
                f"params key '{key}' = {value!r} has the wrong type: expected a number."
            )
        value = float(value)
        if not math.isfinite(value):
            raise ParamsError(f"params key '{key}' = {value!r} must be a finite number.")
        _check_bounds(key, value, meta)
        return value
    if tp is str:
        if not isinstance(value, str) or not value:
            raise ParamsError(
                f"params key '{key}' = {value!r} has the wrong type: expected a non-empty string."
            )
        return value
    raise TypeError(f"unsupported config field type {tp!r} for '{key}'")  # programming error


def from_mapping(cls: type[T], mapping: Any, *, section: str) -> T:
    """Build the config dataclass ``cls`` from one params section.

    Parameters
    ----------
    cls : dataclass type
        The config to build; its fields are the allowed keys.
    mapping : dict or None
        The section as read from YAML. ``None`` means "all defaults".
    section : str
        Dotted name of the section, used in error messages (``"features"``).

    Raises
    ------
    ParamsError
        On an unknown key, a missing required key, a wrong type or a value out of range.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ParamsError(
            f"params section '{section}' must be a mapping of keys to values, "
            f"got {type(mapping).__name__}: {mapping!r}."
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        key = unknown[0]
        hint = difflib.get_close_matches(str(key), list(fields), n=1)
        did_you_mean = f" Did you mean '{section}.{hint[0]}'?" if hint else ""
        raise ParamsError(
            f"unknown params key '{section}.{key}'.{did_you_mean} "
            f"Allowed keys in '{section}': {', '.join(sorted(fields))}."
        )
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        key = f"{section}.{name}"
        if name in mapping:
            values[name] = _coerce(key, mapping[name], hints[name], field.metadata)
        elif dataclasses.is_dataclass(hints[name]):
            values[name] = from_mapping(hints[name], None, section=key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ParamsError(f"params key '{key}' is required but missing from params.yaml.")
    config = cls(**values)
    check = getattr(config, "check", None)
    if check is not None:
        check(section)
    return config


def load_params(path: str | Path = DEFAULT_PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml into a dict, with a clear error if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(
            f"params file '{path}' not found. Run from the project root, or pass --params PATH."
        )
    with path.open(encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ParamsError(f"params file '{path}' is not valid YAML{at}: {problem}. Fix that line (a YAML "
                              f"linter shows the context).") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"params file '{path}' must hold a mapping of sections, got {data!r}.")
    _check_sections(data, path)
    return data


#: the sections of params.yaml that are not an extractor's; each extractor's own section (``features``,
#: ``embeddings.vggish``, ...) is known from the extractors' registry
PIPELINE_SECTIONS = ("data", "split", "vad", "train", "parallel")


def known_sections() -> dict[str, tuple[str, ...] | None]:
    """Top-level section -> its sub-sections (None: a section of keys, not of sections)."""
    from vocalab.features.discovery import sections

    known: dict[str, tuple[str, ...] | None] = dict.fromkeys(PIPELINE_SECTIONS)
    for section in sections().values():
        top, _, sub = section.partition(".")
        known[top] = (*(known.get(top) or ()), sub) if sub else None
    return known


def _check_sections(data: Mapping[str, Any], path: Path) -> None:
    """A misspelled section (``featurs:``) is an error, not a section silently ignored."""
    known_map = known_sections()
    for name, value in data.items():
        where, known = str(name), list(known_map)
        if name in known_map:
            if known_map[name] is None or not isinstance(value, Mapping):
                continue
            unknown = [sub for sub in value if sub not in known_map[name]]
            if not unknown:
                continue
            where, known = f"{name}.{unknown[0]}", [f"{name}.{sub}" for sub in known_map[name]]
        hint = difflib.get_close_matches(where, known, n=1)
        raise ParamsError(f"unknown params section '{where}' in '{path}'."
                          + (f" Did you mean '{hint[0]}'?" if hint else f" Sections: {', '.join(known)}."))


def load_section(cls: type[T], section: str, path: str | Path = DEFAULT_PARAMS_FILE, *,
                 optional: bool = False) -> T:
    """Read params.yaml and build the config of one (possibly dotted) section (``optional``: defaults if absent)."""
    data: Any = load_params(path)
    for part in section.split("."):
        if optional and isinstance(data, Mapping) and part not in data:
            return from_mapping(cls, None, section=section)
        if not isinstance(data, Mapping) or part not in data:
            raise ParamsError(
                f"params section '{section}' is missing from '{path}'. "
                f"Add it (see README for the default params)."
            )
        data = data[part]
    return from_mapping(cls, data, section=section)


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-able data (tuples become lists), for meta files."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))
