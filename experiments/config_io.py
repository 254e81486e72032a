"""Frozen config dataclasses from nested dicts, TOML files and overrides, with one-line errors for bad keys."""

from __future__ import annotations

import dataclasses
import inspect
import io
import os
import pathlib
import textwrap
import tokenize
import tomllib
import types
import typing


def _field_types(cls) -> dict[str, object]:
  hints = typing.get_type_hints(cls)
  return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


def _convert(name: str, kind, value):
  origin = typing.get_origin(kind)
  args = typing.get_args(kind)
  if dataclasses.is_dataclass(kind):
    if not isinstance(value, dict):
      raise ValueError(f"{name} must be a table of {kind.__name__} fields, got {value!r}")
    return build(kind, value, prefix=f"{name}.")
  if origin in (typing.Union, types.UnionType):
    if value is None or (isinstance(value, str) and value.lower() == "none"):
      if type(None) in args:
        return None
    errors = []
    for option in (a for a in args if a is not type(None)):
      try:
        return _convert(name, option, value)
      except (ValueError, TypeError) as error:
        errors.append(str(error))
    raise ValueError(errors[0] if errors else f"{name}={value!r} is not allowed")
  if origin is tuple:
    items = value if isinstance(value, list | tuple) else [value]
    item_kind = args[0] if args else str
    return tuple(_convert(name, item_kind, item) for item in items)
  if kind is bool:
    if isinstance(value, bool):
      return value
    raise ValueError(f"{name}={value!r} is not allowed; allowed: true or false")
  if kind is int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
      raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer")
    return int(value)
  if kind is float:
    if isinstance(value, bool) or not isinstance(value, int | float):
      raise ValueError(f"{name}={value!r} is not allowed; allowed: a number")
    return float(value)
  if kind is str:
    if not isinstance(value, str):
      raise ValueError(f"{name}={value!r} is not allowed; allowed: a string")
    return value
  return value


def build(cls, values: dict, *, prefix: str = ""):
  """An instance of the frozen dataclass `cls` from a (nested) dict; unknown keys raise a one-line ValueError."""
  types_by_name = _field_types(cls)
  unknown = sorted(set(values) - set(types_by_name))
  if unknown:
    raise ValueError(f"unknown setting {prefix}{unknown[0]}; allowed: {', '.join(prefix + n for n in types_by_name)}")
  kwargs = {name: _convert(prefix + name, types_by_name[name], value) for name, value in values.items()}
  return cls(**kwargs)


def read_toml(path: str | os.PathLike) -> dict:
  """The values of a TOML config file, with one-line errors for a missing file, a folder and invalid TOML."""
  path = pathlib.Path(path)
  if path.is_dir():
    raise ValueError(f"config file {path} is a folder; allowed: a TOML file")
  try:
    with open(path, "rb") as handle:
      return tomllib.load(handle)
  except FileNotFoundError:
    raise ValueError(f"config file {path} does not exist") from None
  except tomllib.TOMLDecodeError as error:
    raise ValueError(f"config file {path} is not valid TOML: {error}") from None
  except OSError as error:
    raise ValueError(f"config file {path} cannot be read: {error.strerror}") from None


def with_overrides(config, overrides: dict):
  """A copy of `config` with `overrides` (a nested dict) applied and validated."""
  return build(type(config), merge(as_dict(config), overrides))


def merge(base: dict, overrides: dict) -> dict:
  """`base` with `overrides` applied, tables merged key by key."""
  out = dict(base)
  for key, value in overrides.items():
    out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
  return out


def as_dict(config) -> dict:
  """Plain nested dict of a config dataclass (tuples become lists), for JSON and TOML."""
  return dataclasses.asdict(config)


def field_comments(cls) -> dict[str, str]:
  """The trailing comment of each field of the dataclass `cls` in its source (`name: type = default  # comment`).

  These comments document every config field once; the command line shows them as the flags' help.
  """
  try:
    source = textwrap.dedent(inspect.getsource(cls))
  except (OSError, TypeError):
    return {}
  names = {field.name for field in dataclasses.fields(cls)}
  comments: dict[str, str] = {}
  current = None
  for token in tokenize.generate_tokens(io.StringIO(source).readline):
    if token.type == tokenize.NAME and token.start[1] == 2 and token.string in names and current is None:
      current = token.string
    elif token.type == tokenize.COMMENT and current is not None:
      comments.setdefault(current, token.string.lstrip("# ").strip())
    elif token.type == tokenize.NEWLINE:
      current = None
  return comments
