"""The package's shape: public API, no import cycles, one home per helper, CLI help."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import mstgat_core
from mstgat_core import cli
from mstgat_core.errors import DataError, one_line
from mstgat_core.files import atomic_output, write_text_atomically
from mstgat_core.graphs.graph import MAX_SCALE, parse_scales

PACKAGE = Path(mstgat_core.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Modules of mstgat_core that ``path`` imports anywhere (top level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mstgat_core")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mstgat_core"):
                continue
            for alias in node.names:  # `from . import io` imports the module mstgat_core.data.io
                candidate = f"{target}.{alias.name}"
                path_of = PACKAGE.parent / candidate.replace(".", "/")
                is_module = path_of.with_suffix(".py").exists() or (path_of / "__init__.py").exists()
                found.add(candidate if is_module else target)
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert "mstgat_core.training.pipeline" in graph["mstgat_core.training.distributed"]  # the parser sees real edges
    assert "mstgat_core.graphs.tiling" in graph["mstgat_core.training.pipeline"]
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def package_of(module: str) -> str:
    """``mstgat_core.data.io`` -> ``data``; top-level modules are their own package (``errors``, ``cli``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mstgat_core"


def package_graph() -> dict[str, set[str]]:
    """Sub-package -> the sub-packages it imports (``from .. import __version__`` from the root excluded)."""
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        source = package_of(module)
        graph.setdefault(source, set())
        graph[source] |= {package_of(t) for t in targets if package_of(t) not in (source, "mstgat_core")}
    return graph


# the layers of docs/architecture.md: a package imports only packages of earlier layers
LAYERS = [
    {"errors", "paths"},
    {"mstgat_core", "files"},  # the root imports only errors eagerly (its API is lazy)
    {"data", "graphs"},
    {"model"},
    {"training"},
    {"evaluation", "interpret"},
    {"experiments", "testing"},
    {"cli", "dashboard"},
    {"__main__"},
]


def test_packages_follow_the_layers():
    """The package picture of docs/architecture.md: arrows only point to earlier layers, so no cycle."""
    layer_of = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    graph = package_graph()
    assert set(graph) <= set(layer_of), f"packages missing from LAYERS: {set(graph) - set(layer_of)}"
    assert "training" in graph["evaluation"] and "model" in graph["training"]  # the parser sees real edges
    for source, targets in graph.items():
        for target in targets:
            assert layer_of[target] < layer_of[source], f"{source} imports {target} (same or later layer)"


def test_no_module_is_over_700_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 700
    }
    assert not long, f"split these modules: {long}"


def test_library_never_imports_the_ui():
    ui = ("panel", "holoviews", "bokeh", "playwright")
    for path in PACKAGE.rglob("*.py"):
        if "dashboard" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            )
            assert not [n for n in names if n.split(".")[0] in ui], f"{path.name} imports {names}"


def test_public_api_resolves_and_is_documented():
    for name in mstgat_core.__all__:
        value = getattr(mstgat_core, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, f"{name} has no docstring"
    for name in ("fit", "cross_validate", "FittedModel", "explain_cell", "load_grid", "load_checkpoint"):
        assert "Parameters\n" in inspect.getdoc(getattr(mstgat_core, name)), f"{name}: no numpydoc Parameters"
    assert mstgat_core.cross_validate.__name__ == "cross_validate_grid"
    with pytest.raises(AttributeError):
        mstgat_core.no_such_name  # noqa: B018


def test_import_is_light():
    """``import mstgat_core`` does not pay for torch until a name that needs it is used."""
    code = "import sys, mstgat_core; print('torch' in sys.modules); mstgat_core.fit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_every_cli_option_has_help():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == set(cli.COMMANDS)
    for name, sub in commands.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"mstgat {name}: {action.option_strings or action.dest} has no help"
    text = commands["evaluate"].format_help()
    assert "(default: 5)" in text and "(default: clr)" in text


def test_cli_choices_come_from_the_library():
    from mstgat_core.data.preprocess import TRANSFORMS
    from mstgat_core.evaluation.crossval import DEFAULT_METHODS, METHODS
    from mstgat_core.model import VARIANTS

    commands = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    choices = {a.dest: a for a in commands["train"]._actions}
    assert tuple(choices["variant"].choices) == VARIANTS
    assert tuple(choices["transform"].choices) == TRANSFORMS
    evaluate = {a.dest: a for a in commands["evaluate"]._actions}
    assert evaluate["methods"].default == ",".join(DEFAULT_METHODS) and set(DEFAULT_METHODS) <= set(METHODS)


@pytest.mark.parametrize(
    "text, expected", [("1,2,3", (1, 2, 3)), (" 3 ; 1 ", (3, 1)), ("2,", (2,)), (f"1,{MAX_SCALE}", (1, MAX_SCALE))]
)
def test_parse_scales(text, expected):
    assert parse_scales(text) == expected


@pytest.mark.parametrize("text", ["", "0", "-1", "1,x", "1.5", "1,1", str(MAX_SCALE + 1)])
def test_parse_scales_refuses(text):
    with pytest.raises(DataError):
        parse_scales(text)


def test_one_line():
    assert one_line(ValueError("\n  first   line \nsecond")) == "first line"
    assert one_line(KeyError()) == "KeyError"


def test_atomic_output_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomically(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    write_text_atomically(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_output_replaces_a_folder(tmp_path):
    target = tmp_path / "store.zarr"
    (target / "old").mkdir(parents=True)
    with atomic_output(target) as tmp:
        (tmp / "new").mkdir(parents=True)
    assert [p.name for p in target.iterdir()] == ["new"]
    with pytest.raises(DataError, match="output folder does not exist"):
        with atomic_output(tmp_path / "missing" / "x.txt"):
            pass
