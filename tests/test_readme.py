"""The README: its first commands are CI's, its generated blocks equal their sources, and no number is hand-typed."""

import pathlib
import re

from experiments import bench, readme_blocks, records
from proofs_check import report

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAX_CHARACTERS = 12_000
ALLOWED_NUMBERS = {"3.11": "the Python version", "2406.06144": "the paper's arXiv id", "2025": "the paper's venue"}
"""Numbers the README's prose may state by hand (everything else comes from a generated block)."""


def test_readme_opens_with_the_main_job_and_the_test_command():
  lines = README.splitlines()
  commands = [line for line in lines[:8] if line.startswith("python3 -m venv")]
  assert commands[0].endswith("elasticity reproduce")
  assert commands[1].endswith("&& pytest -n auto")  # pytest-xdist: the suite on every core (up to 4)
  ci = (ROOT / ".ci" / "run").read_text()
  assert re.search(r"\^python3 -m venv", ci), "CI must pick the README's test command"


def test_readme_is_short():
  assert len(README) <= MAX_CHARACTERS


def test_claims_and_verdicts_blocks_equal_the_published_results():
  claims = readme_blocks.block(README, "claims")
  assert claims is not None
  assert claims.strip() == report.readme_table(records.read_json(ROOT / "figures" / "data" / "claims.json")).strip()
  verdicts = readme_blocks.block(README, "verdicts")
  assert verdicts is not None and verdicts.strip() == (ROOT / "figures" / "headlines.md").read_text().strip()


def test_speed_block_is_the_published_benchmark():
  block = readme_blocks.block(README, "bench")
  assert block is not None
  assert block.strip() == bench.markdown(records.read_json(ROOT / "figures" / "data" / "bench.json")).strip()


def test_accelerator_block_is_the_saved_device_logs():
  block = readme_blocks.block(README, "gpu")
  assert block is not None and block.strip() == bench.accelerator_markdown(ROOT / "figures" / "data" / "gpu").strip()


def test_mutation_block_is_the_published_mutation_score():
  from tests import mutation_score

  block = readme_blocks.block(README, "mutation")
  assert block is not None
  saved = records.read_json(ROOT / "figures" / "data" / "mutation.json")
  assert block.strip() == mutation_score.markdown(saved).strip()


def test_no_number_outside_generated_blocks_and_code():
  prose = re.sub(r"<!-- generated:(\w+):start -->.*?<!-- generated:\1:end -->", "", README, flags=re.S)
  prose = re.sub(r"```.*?```", "", prose, flags=re.S)
  prose = re.sub(r"`[^`]*`", "", prose)
  prose = re.sub(r"\([^)]*\.(md|png|py)\)", "", prose)  # link targets
  numbers = set(re.findall(r"(?<![\w.:])\d+(?:\.\d+)?(?![\w])", prose))  # not names such as float64
  assert numbers <= set(ALLOWED_NUMBERS), sorted(numbers - set(ALLOWED_NUMBERS))


def test_embed_replaces_only_the_block(tmp_path):
  readme = tmp_path / "README.md"
  start, end = readme_blocks.markers("x")
  readme.write_text(f"head\n{start}\nold\n{end}\ntail\n")
  assert readme_blocks.embed("x", "new table", readme)
  assert readme.read_text() == f"head\n{start}\nnew table\n{end}\ntail\n"
  assert not readme_blocks.embed("missing", "text", readme)


def test_the_add_an_experiment_example_is_the_real_one():
  """Every Python snippet of the README's 'Add an experiment' section stands verbatim in experiments/example."""
  section = README.split("## Add an experiment", 1)[1].split("\n## ", 1)[0]
  source = (ROOT / "experiments" / "example" / "__init__.py").read_text()
  snippets = re.findall(r"```python\n(.*?)```", section, flags=re.S)
  assert snippets and all(snippet in source for snippet in snippets)
