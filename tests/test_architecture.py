"""The layering the architecture promises: theory <- toy_models <- experiments <- proofs_check <- elasticity_cli.

No import cycle between modules; no module imports a layer above its own; nothing below experiments writes files
(except model checkpoints) or runs git; no import-time switch of JAX or matplotlib global state; a thin CLI.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = ("theory", "toy_models", "experiments", "proofs_check", "elasticity_cli")
WRITE_METHODS = {"write_text", "write_bytes", "savefig"}  # path or figure methods that write files
WRITE_FUNCTIONS = {"os.replace", "os.rename", "np.save", "np.savez", "np.savez_compressed", "tempfile.mkstemp",
                   "shutil.copy", "shutil.copy2", "shutil.copytree", "shutil.rmtree", "os.remove", "os.unlink"}
ALLOWED_WRITERS = {"toy_models/checkpoints.py"}  # model checkpoints are toy_models' one I/O
CLI_MAX_LINES = 500


def modules() -> dict[str, pathlib.Path]:
  """Dotted module name -> file, for every module of the five packages."""
  found = {}
  for package in LAYERS:
    for path in sorted((ROOT / package).rglob("*.py")):
      parts = path.relative_to(ROOT).with_suffix("").parts
      found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  return found


def imports(path: pathlib.Path, name: str) -> set[str]:
  """Our modules that `path` imports (at any depth of the file), resolved to module names."""
  tree = ast.parse(path.read_text())
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
      out.add(base)
      out.update(f"{base}.{alias.name}" for alias in node.names)
  return {m for m in out if m.split(".")[0] in LAYERS}


GRAPH = {name: imports(path, name) for name, path in modules().items()}


def layer(module: str) -> int:
  return LAYERS.index(module.split(".")[0])


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_module_imports_a_layer_above_its_own(name):
  above = sorted(m for m in GRAPH[name] if layer(m) > layer(name))
  assert not above, f"{name} imports {above}"


def test_no_import_cycle_between_modules():
  # A submodule naming its own package (`from proofs_check import simulated` in proofs_check.report) adds no edge:
  # Python imports the package before any of its submodules, so that import is always already under way. A package
  # importing its own submodules is no cycle either. Traversal is in sorted order, so the verdict is deterministic.
  def related(a: str, b: str) -> bool:
    return a.startswith(b + ".") or b.startswith(a + ".")

  edges = {name: sorted(m for m in targets if m in GRAPH and m != name and not related(name, m))
           for name, targets in GRAPH.items()}
  state: dict[str, int] = {}

  def visit(node, trail):
    state[node] = 1
    for nxt in edges[node]:
      if state.get(nxt) == 1:
        raise AssertionError(f"import cycle: {' -> '.join(trail + [nxt])}")
      if nxt not in state:
        visit(nxt, trail + [nxt])
    state[node] = 2

  for name in sorted(edges):
    if name not in state:
      visit(name, [name])


def test_the_cycle_check_finds_a_planted_cycle(monkeypatch):
  planted = {**GRAPH, "theory.mixture": GRAPH["theory.mixture"] | {"theory.compression"},
             "theory.compression": GRAPH["theory.compression"] | {"theory.mixture"}}
  monkeypatch.setitem(globals(), "GRAPH", planted)
  with pytest.raises(AssertionError, match="import cycle"):
    test_no_import_cycle_between_modules()


@pytest.mark.parametrize("package", ("theory", "toy_models"))
def test_nothing_below_experiments_writes_files_or_runs_git(package):
  for path in sorted((ROOT / package).rglob("*.py")):
    relative = path.relative_to(ROOT).as_posix()
    source = path.read_text()
    assert "subprocess" not in source, f"{relative} runs processes"
    if relative in ALLOWED_WRITERS:
      continue
    for node in ast.walk(ast.parse(source)):
      if isinstance(node, ast.Call):
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        full = ast.unparse(node.func)
        assert called not in WRITE_METHODS and full not in WRITE_FUNCTIONS, f"{relative}:{node.lineno} writes ({full})"
        if called == "open" and len(node.args) > 1:
          assert "w" not in getattr(node.args[1], "value", "r"), f"{relative}:{node.lineno} opens for writing"


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_global_switch_at_import_time(name):
  """Module-level code never calls jax.config.update or matplotlib.use: entry points choose."""
  tree = ast.parse(modules()[name].read_text())
  for node in tree.body:
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
      if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        break
      text = ast.unparse(call.func)
      assert text not in ("jax.config.update", "matplotlib.use"), f"{name}:{call.lineno} calls {text} at import"


def test_the_command_line_stays_thin():
  lines = sum(len(path.read_text().splitlines()) for path in (ROOT / "elasticity_cli").glob("*.py"))
  assert lines <= CLI_MAX_LINES


def test_every_module_has_a_one_line_docstring():
  for name, path in modules().items():
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{name} has no module docstring"


def test_tests_mirror_the_source_tree():
  # tests/<package>/ holds the tests of that package; only the checks of the whole checkout sit at the top.
  top_level = {"test_architecture.py", "test_readme.py", "test_mutation_score.py"}
  assert {p.name for p in (ROOT / "tests").glob("test_*.py")} == top_level
  folders = {p.relative_to(ROOT / "tests").parts[0] for p in (ROOT / "tests").rglob("test_*.py")} - top_level
  assert folders == set(LAYERS)
  for folder in LAYERS:
    assert (ROOT / "tests" / folder / "__init__.py").exists(), folder
