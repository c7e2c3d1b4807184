"""The layer map in README.md is the rule the imports follow, and the Bento ships only what serving imports.

The import graph comes from grimp (import-linter's graph library), which reads every import statement of our
packages, also those inside functions.
"""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "models", "training", "serving", "leadscore")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def readme_layers() -> dict[str, int]:
    """Folder (as a module prefix) -> layer, from the rows of README's layout table that start with a layer."""
    rows = re.findall(r"^\| (\d) \| `([\w/]+)/` \|", (ROOT / "README.md").read_text(encoding="utf-8"), re.MULTILINE)
    return {folder.replace("/", "."): int(layer) for layer, folder in rows}


def layer_of(module: str, layers: dict[str, int]) -> tuple[str, int]:
    """The most specific folder of the map holding the module; a package above several (leadscore) takes
    the lowest layer among them."""
    owners = [f for f in layers if module == f or module.startswith(f + ".")]
    if owners:
        folder = max(owners, key=len)
        return folder, layers[folder]
    below = [f for f in layers if f.startswith(module + ".")]
    assert below, f"{module} is in no folder of README's layer map"
    folder = min(below, key=layers.get)
    return folder, layers[folder]


def test_the_readme_map_names_every_package() -> None:
    layers = readme_layers()
    assert {"features", "models", "training", "serving", "leadscore.jobs", "leadscore.tools"} <= set(layers)
    assert layers["features"] < layers["models"] < layers["training"] == layers["serving"] < layers["leadscore.jobs"]


def test_no_import_runs_back_up_a_layer(graph) -> None:
    layers = readme_layers()
    wrong = []
    for module in sorted(graph.modules):
        folder, layer = layer_of(module, layers)
        for imported in graph.find_modules_directly_imported_by(module):
            other, other_layer = layer_of(imported, layers)
            sideways = other_layer == layer and other != folder  # training and serving never import each other
            if other_layer > layer or sideways:
                wrong.append(f"{module} (layer {layer}) imports {imported} (layer {other_layer})")
    assert wrong == []


def test_the_checker_catches_an_upward_import(graph) -> None:
    """The rule is not vacuous: a serving module importing training would be reported."""
    layers = readme_layers()
    assert layer_of("training.train", layers)[1] == layer_of("serving.service", layers)[1]
    assert layer_of("leadscore.tools.cli", layers)[1] > layer_of("models.artifact", layers)[1]
    assert "serving.service" in graph.find_modules_directly_imported_by("leadscore.tools.cli")


def test_the_bento_ships_exactly_what_serving_imports(graph) -> None:
    imported = graph.find_upstream_modules("serving.service") | {"serving.service"}
    packages = {".".join(m.split(".")[:k]) for m in imported for k in range(1, m.count(".") + 1)}
    needed = set()
    for module in imported | packages:
        base = ROOT.joinpath(*module.split("."))
        needed.add(str((base / "__init__.py" if base.is_dir() else base.with_suffix(".py")).relative_to(ROOT)))
    include = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["include"]
    shipped = {p for p in include if p.endswith(".py")}
    assert shipped == needed, {"not shipped": sorted(needed - shipped), "not needed": sorted(shipped - needed)}
    assert not any(p.startswith(("leadscore/", "training/")) for p in include)
