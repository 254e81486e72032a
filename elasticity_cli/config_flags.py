"""Command-line flags generated from a config dataclass: one flag per field, `--set a.b=v` for nested fields."""

from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib
import typing

from experiments import config_io

_PAIR = re.compile(r"\s*\d+\s*x\s*\d+\s*")
RESERVED = {"config", "scale", "set", "out_dir", "fresh", "compile"}


def parse_value(text: str):
  """A flag's value: a TOML value (3, 0.5, "a", [1, 2], true), a comma list (1,2 or pareto,zipf) or WxL pairs."""
  try:
    return tomllib.loads(f"v = {text}")["v"]
  except tomllib.TOMLDecodeError:
    pass
  items = [item.strip() for item in text.split(",") if item.strip()]
  if items and all(_PAIR.fullmatch(item) for item in items):
    return [[int(v) for v in item.split("x")] for item in items]

  def one(item):
    try:
      return tomllib.loads(f"v = {item}")["v"]
    except tomllib.TOMLDecodeError:
      return item

  values = [one(item) for item in items]
  return values if len(values) != 1 or "," in text else values[0]


def _shown(value) -> str:
  if isinstance(value, tuple):
    return ",".join("x".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}" if isinstance(v, float) else str(v)
                    for v in value)
  return f"{value:g}" if isinstance(value, float) else str(value)


def scalar_fields(cls) -> list[dataclasses.Field]:
  """The fields of `cls` that get a flag of their own (nested configs are set with --set)."""
  hints = typing.get_type_hints(cls)
  return [field for field in dataclasses.fields(cls)
          if not dataclasses.is_dataclass(hints[field.name]) and field.name not in RESERVED]


def add_flags(parser: argparse.ArgumentParser, cls, defaults) -> None:
  """--FIELD for every scalar field of `cls` (help: its source comment and its value in `defaults`), and --set."""
  comments = config_io.field_comments(cls)
  group = parser.add_argument_group("config fields (override the scale's values)")
  for field in scalar_fields(cls):
    text = comments.get(field.name, "")
    group.add_argument(f"--{field.name.replace('_', '-')}", dest=f"field_{field.name}", type=parse_value,
                       default=None, metavar="V", help=f"{text} (default: {_shown(getattr(defaults, field.name))})")
  group.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                     help="any field, nested ones too, e.g. --set transformer_plan.joint.steps=3000 (repeatable)")


def overrides(args: argparse.Namespace, cls) -> dict:
  """The nested dict of overrides given by the generated flags and every --set KEY=VALUE."""
  out: dict = {}
  for field in scalar_fields(cls):
    value = getattr(args, f"field_{field.name}", None)
    if value is not None:
      out[field.name] = value
  for setting in args.settings:
    key, sep, text = setting.partition("=")
    if not sep or not key.strip():
      raise ValueError(f"--set {setting!r} is not allowed; allowed: KEY=VALUE, e.g. seeds=10 or "
                       "transformer_plan.joint.steps=3000")
    node = out
    *parents, leaf = key.strip().split(".")
    for part in parents:
      node = node.setdefault(part, {})
      if not isinstance(node, dict):
        raise ValueError(f"--set {setting!r} sets inside {part!r}, which is not a table of fields")
    node[leaf] = parse_value(text)
  return out
