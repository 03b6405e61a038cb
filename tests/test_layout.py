"""The layout a newcomer reads: no module over 400 lines, and no import cycle among amplify's
modules (a module importing its own package's sibling does not count as importing the package)."""
from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).parents[1] / "amplify"


def _modules() -> dict[str, pathlib.Path]:
  found = {}
  for path in PACKAGE.rglob("*.py"):
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found[name.removesuffix(".__init__")] = path
  return found


def _imports(name: str, path: pathlib.Path, modules: dict) -> set[str]:
  """The amplify modules `name` imports at its top level (imports inside functions are lazy),
  with the packages whose __init__ runs first, except the importer's own packages."""
  deps = set()
  for node in ast.parse(path.read_text()).body:
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("amplify"):
      for alias in node.names:
        full = f"{node.module}.{alias.name}"
        deps.add(full if full in modules else node.module)
    elif isinstance(node, ast.Import):
      deps |= {a.name for a in node.names if a.name.startswith("amplify")}
  for dep in list(deps):
    parts = dep.split(".")
    deps |= {".".join(parts[:i]) for i in range(2, len(parts))}
  own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
  return {d for d in deps if d in modules and d != name and d not in own}


def test_no_module_is_over_400_lines():
  long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
          if (n := len(p.read_text().splitlines())) > 400}
  assert not long


def test_no_import_cycle():
  modules = _modules()
  graph = {name: _imports(name, path, modules) for name, path in modules.items()}
  state, stack, cycles = {}, [], []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for dep in sorted(graph[node]):
      if state.get(dep) == "open":
        cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
      elif dep not in state:
        visit(dep)
    stack.pop()
    state[node] = "done"

  for name in sorted(graph):
    if name not in state:
      visit(name)
  assert not cycles


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
  """The cycle test can fail: two modules importing each other are found."""
  package = tmp_path / "amplify"
  package.mkdir()
  (package / "__init__.py").write_text("")
  (package / "a.py").write_text("from amplify import b\n")
  (package / "b.py").write_text("from amplify import a\n")
  monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
  try:
    test_no_import_cycle()
  except AssertionError:
    return
  raise AssertionError("a cycle went unseen")
