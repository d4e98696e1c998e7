"""Every built-in recipe file and every recipe example in the documentation loads unchanged, and a
loaded recipe dumped back to YAML loads to the same recipe (the resolved recipe a run saves)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from reasondistill.config import BUILTIN_RECIPES, Recipe, build, dump_recipe, load_recipe, to_dict

ROOT = Path(__file__).resolve().parents[2]
RECIPES = Path(str(resources.files("reasondistill") / "recipes"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SECTIONS = {f for f in Recipe.__dataclass_fields__}


def recipe_files() -> list[Path]:
    return sorted(RECIPES.rglob("*.y*ml"))


def doc_examples() -> list[tuple[str, str]]:
    """``(where, text)`` of each ```yaml block of the docs whose keys are recipe sections."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"```yaml\n(.*?)```", text, re.S):
            data = yaml.safe_load(m.group(1))
            if isinstance(data, dict) and set(data) <= SECTIONS:
                found.append((f"{doc.name}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1)))
    return found


def round_trip(recipe: Recipe, tmp_path: Path) -> None:
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(dump_recipe(recipe))
    assert to_dict(load_recipe(dumped)) == to_dict(recipe)


def test_every_builtin_recipe_file_is_named_and_found():
    named = {(RECIPES / rel).resolve() for rel in BUILTIN_RECIPES.values()}
    assert named <= {p.resolve() for p in recipe_files()} and len(recipe_files()) >= 10


@pytest.mark.parametrize("path", recipe_files(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_builtin_recipe_loads_unchanged_and_round_trips(path, tmp_path):
    recipe = load_recipe(path)
    assert recipe.name and recipe.teachers()
    round_trip(recipe, tmp_path)


def test_the_docs_have_recipe_examples():
    assert len(doc_examples()) >= 4


@pytest.mark.parametrize("where,text", doc_examples(), ids=lambda v: v if ":" in v else "")
def test_documented_recipe_example_loads_unchanged_and_round_trips(where, text, tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    recipe = load_recipe(path)
    assert to_dict(recipe) == to_dict(build(Recipe, yaml.safe_load(text) or {}))
    round_trip(recipe, tmp_path)
