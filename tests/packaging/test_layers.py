"""The import directions of docs/ARCHITECTURE.md, read from the source with an AST walk.

Every ``import`` counts, at module level or inside a function: a lazy import is still a
dependency. ``python tests/packaging/test_layers.py`` prints the stage graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("foundation", "model", "quant", "hw", "sim", "host", "cli")

#: What a stage's library modules may import (its own stage included). CLI modules may import any stage.
MAY_IMPORT = {
    "foundation": {"foundation"},
    "model": {"foundation", "model"},
    "hw": {"foundation", "hw"},
    "quant": {"foundation", "model", "quant"},
    "sim": {"foundation", "hw", "sim"},
    "host": {"foundation", "hw", "sim", "model", "host"},
    "cli": set(STAGES),
}

#: Modules of the board path (a PYNQ image: NumPy, this package's foundation and these modules).
BOARD_PATH = {
    "lstmfpga.host", "lstmfpga.host.board_infer", "lstmfpga.host.board_command", "lstmfpga.host.board_handler",
    "lstmfpga.host.payloads", "lstmfpga.host.stream_protocol", "lstmfpga.host.sequence_server",
    "lstmfpga.host.result_log", "lstmfpga.host.server_limits", "lstmfpga.host.byte_budget", "lstmfpga.host.verdicts",
    "lstmfpga.host.infer",
    "lstmfpga.host.feature_source", "lstmfpga.host.backends", "lstmfpga.host.backends.base",
    "lstmfpga.host.backends.golden", "lstmfpga.host.backends.driver_backend", "lstmfpga.host.backends.pynq_board",
    "lstmfpga.host.driver", "lstmfpga.host.driver.core", "lstmfpga.host.driver.dma", "lstmfpga.host.driver.errors",
    "lstmfpga.host.driver.pynq_ip", "lstmfpga.host.overlay", "lstmfpga.host.overlay.ip_identity",
}
BOARD_ENTRY = "lstmfpga.host.board_infer"
#: Lazy imports off the board: inputs a board image never sees, each loaded only when given.
OFF_BOARD = {
    ("lstmfpga.host.feature_source", "lstmfpga.model.feature_cache"),  # a feature-cache folder
    ("lstmfpga.host.board_command", "lstmfpga.quant.model_file"),      # a QONNX model (needs onnx)
}
FOUNDATION_THIRD_PARTY = {"numpy"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["lstmfpga", *parts])


def is_cli(module: str) -> bool:
    """The command-line layer: the ``cli`` package and each stage's command modules."""
    leaf = module.rsplit(".", 1)[-1]
    return module.split(".")[1] == "cli" or leaf in ("cli", "commands", "board_infer", "board_command") \
        or leaf.endswith("_cli")


def stage(module: str) -> str:
    return module.split(".")[1]


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import in one file."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    lazy = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) not in lazy) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno, id(node) not in lazy))
            # ``from lstmfpga.host import cli`` imports the module ``lstmfpga.host.cli``.
            found += [(f"{target}.{alias.name}", node.lineno, id(node) not in lazy) for alias in node.names]
    return found


def source_files() -> list[Path]:
    return sorted(p for s in STAGES for p in (ROOT / s).rglob("*.py"))


def project_graph() -> dict[str, list[tuple[str, int, bool]]]:
    """Each project module → the project modules it imports (names that are not modules dropped)."""
    files = source_files()
    modules = {module_name(p) for p in files}
    graph = {}
    for path in files:
        graph[module_name(path)] = [(t, line, top) for t, line, top in imports(path) if t in modules]
    return graph


@pytest.fixture(scope="module")
def graph():
    return project_graph()


def test_the_walk_sees_every_stage(graph):
    assert {stage(m) for m in graph} == set(STAGES)
    assert ("lstmfpga.foundation.artifact", True) in {(t, top) for t, _, top in graph["lstmfpga.foundation.integer_lstm"]}
    assert len(graph) > 100


def test_library_modules_import_only_their_layers(graph):
    bad = [f"{m}:{line} imports {t}" for m, targets in graph.items() if not is_cli(m)
           for t, line, _ in targets if stage(t) not in MAY_IMPORT[stage(m)] or (is_cli(t) and not is_cli(m))]
    assert bad == []


def test_no_cycles_between_stages(graph):
    edges = defaultdict(set)
    for m, targets in graph.items():
        edges[stage(m)] |= {stage(t) for t, _, _ in targets} - {stage(m)}
    order, state = [], {}

    def visit(node, path):
        if state.get(node) == "open":
            raise AssertionError(f"stage cycle: {' -> '.join(path + [node])}")
        if node not in state:
            state[node] = "open"
            for nxt in sorted(edges[node]):
                visit(nxt, path + [node])
            state[node] = "done"
            order.append(node)

    for node in STAGES:
        visit(node, [])
    assert order.index("foundation") == 0


def test_foundation_needs_only_numpy_and_the_standard_library():
    bad = []
    for path in (ROOT / "foundation").rglob("*.py"):
        for target, line, _ in imports(path):
            top = target.split(".")[0]
            if top not in ("lstmfpga", "__future__") and top not in sys.stdlib_module_names \
                    and top not in FOUNDATION_THIRD_PARTY:
                bad.append(f"{module_name(path)}:{line} imports {target}")
    assert bad == []


def test_board_path_reaches_only_foundation_and_board_modules(graph):
    assert BOARD_PATH <= set(graph), sorted(BOARD_PATH - set(graph))
    seen, todo, bad = set(), [BOARD_ENTRY, *sorted(BOARD_PATH)], []
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for t, line, _ in graph[m]:
            if (m, t) in OFF_BOARD:
                continue
            if stage(t) != "foundation" and t not in BOARD_PATH:
                bad.append(f"{m}:{line} imports {t}")
            todo.append(t)
    assert bad == []


def test_off_board_imports_are_lazy_and_still_present(graph):
    """Each allowed exception is a function-level import that exists (else the list is stale)."""
    for m, t in OFF_BOARD:
        assert [top for target, _, top in graph[m] if target == t] == [False], (m, t)


@pytest.mark.parametrize("source,module,expected", [
    ("from lstmfpga.sim.golden import cli\n", "lstmfpga.foundation.x", ["lstmfpga.sim.golden", "lstmfpga.sim.golden.cli"]),
    ("def f():\n    import lstmfpga.quant.head\n", "lstmfpga.hw.x", ["lstmfpga.quant.head"]),
    ("from . import errors\n", "lstmfpga.host.driver.x", ["lstmfpga.host.driver", "lstmfpga.host.driver.errors"]),
    ("from ..foundation.errors import ConfigError\n", "lstmfpga.hw.x",
     ["lstmfpga.foundation.errors", "lstmfpga.foundation.errors.ConfigError"]),
])
def test_the_walk_reads_every_import_form(tmp_path, monkeypatch, source, module, expected):
    parts = module.split(".")[1:]
    path = tmp_path.joinpath(*parts).with_suffix(".py")
    path.parent.mkdir(parents=True)
    path.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [t for t, _, _ in imports(path)] == expected


if __name__ == "__main__":
    stage_edges = defaultdict(list)
    for m, targets in project_graph().items():
        for t, line, top in targets:
            if stage(t) != stage(m):
                stage_edges[stage(m), stage(t)].append(f"{m}:{line} -> {t}{'' if top else ' (lazy)'}")
    for (a, b), lines in sorted(stage_edges.items()):
        print(f"{a} -> {b}: {len(lines)}")
        if b != "foundation":
            print("".join(f"    {line}\n" for line in lines), end="")
