"""Imports run one way, down the chain: a module may import its own layer or a lower one, never a higher one."""

import ast
from pathlib import Path

import ctrt

# Lowest first. Within a layer anything goes; the top layer holds the commands.
LAYERS = [
    {"classes", "errors", "inputs", "outputs", "progress", "shutdown", "sizes", "version"},
    {"model", "artifacts", "onnx_graph", "trt_rules", "trt_api", "options"},
    {"counting"},
    {"runtime"},
    {"site"},
    {"plan"},
    {"run"},
    {"export"},
    {"calibration"},
    {"engines"},
    {"api"},
    {"eval", "bench", "bench_streams", "demo", "doctor", "selftest", "inspection", "triton"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT = Path(ctrt.__file__).parent
FRONT_DOOR = "__init__"  # ctrt itself: above every room (it re-exports the API)
RANK[FRONT_DOOR] = len(LAYERS)


def imports(path: Path, package: list[str]):
    """(line, top-level room of ctrt) for every import of ctrt in the file, in every form: ``from .x import y``,
    ``from . import x`` (each name a room, or the front door when it names no room), ``import ctrt.x``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            if len(target) > 1:
                yield node.lineno, target[1]
            else:  # "from . import x": the room x, or a name of the package's front door
                for alias in node.names:
                    yield node.lineno, alias.name if (ROOT / f"{alias.name}.py").exists() or (
                        ROOT / alias.name).is_dir() else FRONT_DOOR
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ctrt":
            yield node.lineno, node.module.split(".")[1] if "." in node.module else FRONT_DOOR
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ctrt":
                    yield node.lineno, alias.name.split(".")[1] if "." in alias.name else FRONT_DOOR


def test_the_reader_sees_every_import_form(tmp_path):
    """The check itself: each form of importing a room, and the front door, is read as the room it names."""
    probe = tmp_path / "probe.py"
    probe.write_text("from . import __version__\nfrom . import api\nfrom .plan import RunPlan\nimport ctrt.run\n"
                     "from ctrt import load\n")
    assert list(imports(probe, ["ctrt"])) == [(1, FRONT_DOOR), (2, "api"), (3, "plan"), (4, "run"), (5, FRONT_DOOR)]


def test_no_import_runs_up_the_chain():
    root = ROOT
    upward, unknown = [], set()
    for path in sorted(root.rglob("*.py")):
        parts = ["ctrt", *path.relative_to(root).with_suffix("").parts]
        package = parts if path.name == "__init__.py" else parts[:-1]
        if path.name == "__init__.py" and len(parts) == 2:
            continue
        own = parts[1]
        for line, target in imports(path, package):
            if own not in RANK or target not in RANK:
                unknown |= {own, target} - RANK.keys()
            elif RANK[target] > RANK[own]:
                upward.append(f"{path.relative_to(root.parent)}:{line} -> ctrt.{target}")
    assert not unknown, f"place these in LAYERS: {sorted(unknown)}"
    assert not upward, "imports against the chain:\n" + "\n".join(upward)


def test_benchmark_scripts_shadow_no_installed_module():
    """``python benchmarks/x.py`` puts benchmarks/ first on sys.path: a script named like a module some library looks
    for is imported in its place (a benchmarks/triton.py broke torch.optim, which probes for OpenAI's triton)."""
    import importlib.util
    import sys

    repo = Path(ctrt.__file__).parent.parent
    probed = {"triton"}  # torch looks for it; CUDA builds of torch install it

    def installed(name: str) -> bool:
        spec = importlib.util.find_spec(name)
        where = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), ""))
        return bool(where) and not str(where).startswith(str(repo))  # our own folders (export/) do not count

    taken = [p.name for p in (repo / "benchmarks").glob("*.py")
             if p.stem in sys.stdlib_module_names or p.stem in probed or installed(p.stem)]
    assert not taken, f"rename these benchmark scripts: {taken}"
