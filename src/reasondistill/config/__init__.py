"""Typed recipe configuration: ``schema.py`` holds the dataclasses (one per section, nested under
:class:`Recipe`), ``load.py`` reads YAML, applies ``a.b=c`` overrides and builds them.

A section's options that belong to a component live beside it (a curation policy's, a generation
mode's); the names below that moved there still import from here, resolved on first use.
"""

from __future__ import annotations

from typing import Any

from .load import (BUILTIN_RECIPES, FLOAT_FLOORS, INT_FLOORS, RUN_REF, apply_overrides, build, builtin_recipe_path,
                   check_int, dump_recipe, int_floor, int_problem, load_recipe, run_reference, run_reference_recipe,
                   strip_optional, to_dict)
from .schema import (ROUTE_FIELDS, CompareConfig, CurateConfig, EvalConfig, GenerateConfig, LoopConfig,
                     NamedTeacherConfig, ProblemsConfig, PromptConfig, Recipe, ReportConfig, RouteConfig,
                     BackendConfig, TrainConfig, VerifyConfig, check_address, check_choice, check_url, field_types,
                     section, section_class)

MOVED = {
    "LengthConfig": "reasondistill.curate.budget:LengthConfig",
    "StudentAwareConfig": "reasondistill.curate.student_aware:StudentAwareConfig",
    "SelfConsistencyConfig": "reasondistill.curate.consistency:SelfConsistencyConfig",
    "DecontaminateConfig": "reasondistill.curate.decontam:DecontaminateConfig",
    "TeachersConfig": "reasondistill.curate.best_teacher:TeachersConfig",
    "SandboxConfig": "reasondistill.sandbox:SandboxConfig",
    "ProbeConfig": "reasondistill.evaluate.probe:ProbeConfig",
    "RayConfig": "reasondistill.backends.ray_pool:RayConfig",
}


def __getattr__(name: str) -> Any:
    if name in MOVED:
        from ..registry import load
        return load(MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BUILTIN_RECIPES", "FLOAT_FLOORS", "INT_FLOORS", "ROUTE_FIELDS", "RUN_REF", "CompareConfig", "CurateConfig",
           "EvalConfig", "GenerateConfig", "LoopConfig", "NamedTeacherConfig", "ProblemsConfig", "PromptConfig",
           "Recipe", "ReportConfig", "RouteConfig", "BackendConfig", "TrainConfig", "VerifyConfig", "apply_overrides",
           "build", "builtin_recipe_path", "check_address", "check_choice", "check_int", "check_url", "dump_recipe",
           "field_types", "int_floor", "int_problem", "load_recipe", "run_reference", "run_reference_recipe",
           "section", "section_class", "strip_optional", "to_dict"]

TeacherConfig = BackendConfig  # its earlier name, kept for code written against the Python API before the rename
