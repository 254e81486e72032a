"""The README: its first commands are the ones CI runs, and its generated blocks equal the files they came from."""

import pathlib
import re

from elasticity_cli import readme_embed

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_opens_with_the_main_job_and_the_test_command():
  lines = (ROOT / "README.md").read_text().splitlines()
  commands = [line for line in lines[:8] if line.startswith("python3 -m venv")]
  assert commands[0].endswith("elasticity reproduce")
  assert commands[1].endswith("pytest")
  ci = (ROOT / ".ci" / "run").read_text()
  assert re.search(r"\^python3 -m venv", ci), "CI must pick the README's test command"


def test_claims_block_equals_the_generated_table():
  block = readme_embed.block((ROOT / "README.md").read_text(), "claims")
  assert block is not None
  assert block.strip() == (ROOT / "figures" / "claims_table.md").read_text().strip()


def test_embed_replaces_only_the_block(tmp_path):
  readme = tmp_path / "README.md"
  start, end = readme_embed.markers("x")
  readme.write_text(f"head\n{start}\nold\n{end}\ntail\n")
  assert readme_embed.embed("x", "new table", readme)
  assert readme.read_text() == f"head\n{start}\nnew table\n{end}\ntail\n"
  assert not readme_embed.embed("missing", "text", readme)


def test_verdicts_block_equals_the_generated_file():
  block = readme_embed.block((ROOT / "README.md").read_text(), "verdicts")
  assert block is not None
  assert block.strip() == (ROOT / "figures" / "verdicts.md").read_text().strip()
