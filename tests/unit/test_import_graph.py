"""The package's import graph: no circle, layers import only downwards, one Horovod binding.

Every ``import``/``from ... import`` statement of every module counts, at module level or inside
a function (a lazy import is still a dependency). Layers, bottom to top, as the README's
layout section has them; a module may import its own layer and the layers below.
"""
import ast
from pathlib import Path

import pytest

from ._helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "hvd_qsparse"

#: room → layer (higher imports lower); the package root's ``__init__``/``__version__`` re-export.
LAYERS = {
    "validation": 0, "discovery": 0, "files": 0, "ops": 0, "backend": 0,
    "compression": 1, "error_feedback": 2, "data": 2, "comm": 3, "optim": 4, "algorithms": 5,
    "workloads": 6, "reporting": 6, "jobs": 7, "cli": 8, "bench": 8,
}
#: the rooms below the jobs, where only the Horovod communicator may import ``horovod.torch``
BELOW_JOBS = {room for room, layer in LAYERS.items() if layer < LAYERS["jobs"]}
HOROVOD_BINDING = "hvd_qsparse.backend.horovod"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path):
    """Every module name ``name`` imports (absolute, as written; ``from a import b`` counts
    ``a.b`` when that is a module of the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)


def graph():
    return {name: sorted({m for m in imported(name, path) if m in MODULES and m != name})
            for name, path in MODULES.items()}


def room(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def find_cycle(edges):
    """One import circle as a list of modules, or None (depth-first search, three colours)."""
    colour, stack = {}, []

    def visit(node):
        colour[node] = "grey"
        stack.append(node)
        for nxt in edges.get(node, ()):
            if colour.get(nxt) == "grey":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour:
                found = visit(nxt)
                if found:
                    return found
        colour[node] = "black"
        stack.pop()
        return None

    for node in edges:
        if node not in colour:
            found = visit(node)
            if found:
                return found
    return None


def test_the_walk_sees_the_package():
    edges = graph()
    assert len(MODULES) > 60 and "hvd_qsparse.optim.pipeline" in edges
    assert "hvd_qsparse.compression.base" in edges["hvd_qsparse.compression.quantizers"]


def test_a_planted_circle_is_found():
    """The checker itself: a two-module circle and a longer one are reported."""
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a"]}) is None


def test_no_import_circle():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if room(n)))
def test_every_room_has_a_layer(name):
    assert room(name) in LAYERS, f"{name}: add its room to LAYERS (and to the README's layout)"


def test_layers_import_only_downwards():
    upward = [(src, dst) for src, dsts in graph().items() for dst in dsts
              if room(src) and room(dst) and LAYERS[room(dst)] > LAYERS[room(src)]]
    assert not upward, upward


def test_only_the_horovod_communicator_imports_horovod_torch_below_the_jobs():
    offenders = [name for name, path in MODULES.items()
                 if room(name) in BELOW_JOBS and name != HOROVOD_BINDING
                 and any(m == "horovod.torch" or m.startswith("horovod.torch.") for m in imported(name, path))]
    assert not offenders, offenders
    assert any(m.startswith("horovod.torch") for m in imported(HOROVOD_BINDING, MODULES[HOROVOD_BINDING]))
