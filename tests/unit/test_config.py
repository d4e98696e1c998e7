import re

import pytest

from reasondistill.config import BUILTIN_RECIPES, Recipe, build, load_recipe
from reasondistill.errors import ConfigError


@pytest.mark.parametrize("name", list(BUILTIN_RECIPES))
def test_builtin_recipes_load(name):
    r = load_recipe(name)
    assert isinstance(r, Recipe) and r.problems.n_eval >= 300


def test_overrides_beat_yaml_beat_defaults(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  epochs: 3\n  lora: true\n")
    r = load_recipe(path, ["train.epochs=5", "generate.stop=['###']", "problems.task_config={min_terms: 2}"])
    assert r.train.epochs == 5.0 and r.train.lora is True and r.train.batch_size == 8
    assert r.generate.stop == ["###"] and r.problems.task_config == {"min_terms": 2}


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"r.yaml: unknown recipe key 'train.epoch'; did you mean 'epochs'"):
        load_recipe(path)


@pytest.mark.parametrize("data,msg", [
    ({"train": {"batch_size": "big"}}, "train.batch_size' must be int"),
    ({"generate": {"temperature": -1}}, "temperature must be in"),
    ({"teacher": []}, "teacher: expected a mapping"),
])
def test_bad_values_are_named(data, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace("[", r"\[")):
        build(Recipe, data)


@pytest.mark.parametrize("data,msg", [
    ({"verify": {"verifier": "magic"}}, "unknown verifier (verify.verifier) 'magic' (available: auto, math"),
    ({"teacher": {"backend": "vlm"}}, "unknown teacher backend 'vlm' (available: transformers, program, dummy, openai, llamacpp, vllm); did you mean 'vllm'?"),
    ({"teacher": {"backend": "dummy", "options": {"acuracy": 1}}}, "unknown recipe key 'teacher.options.acuracy'; "
                                                                    "did you mean 'accuracy'?"),
    ({"train": {"method": "sfft"}}, "unknown training objective (train.method) 'sfft'"),
    ({"train": {"method": "redi", "objective": {"alpha": 2}}}, "redi.alpha"),
])
def test_names_are_checked_against_the_tables(data, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):  # one step: building checks the names too
        build(Recipe, data)


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match=r"r.yaml:\d+: invalid YAML"):
        load_recipe(path)


def test_missing_recipe_file():
    with pytest.raises(ConfigError, match="neither a file nor a built-in recipe"):
        load_recipe("no/such/recipe.yaml")


def test_every_int_default_passes_the_count_rule_it_implies():
    """The rule of ``config.int_floor`` (and INT_FLOORS) never refuses a field's own default, for
    the recipe's dataclasses and every objective's and backend's options."""
    import dataclasses
    import typing

    from reasondistill import config
    from reasondistill.backends import BACKENDS
    from reasondistill.registry import load
    from reasondistill.train import OBJECTIVES

    classes = {config.Recipe}
    classes |= {load(o.config) for o in OBJECTIVES.values() if o.config}
    classes |= {load(spec).Options for spec in BACKENDS.values()}
    seen, checked = set(), 0
    while classes:
        cls = classes.pop()
        seen.add(cls)
        hints = config.field_types(cls)  # a declared section: its options class
        for f in dataclasses.fields(cls):
            tp = config.strip_optional(hints[f.name])
            nested = [a for a in (tp, *typing.get_args(tp), *(typing.get_args(a)[0] for a in typing.get_args(tp)
                                                             if typing.get_origin(a) is list))
                      if dataclasses.is_dataclass(a)]
            classes |= set(nested) - seen
            if tp is int and f.default is not dataclasses.MISSING and f.default is not None:
                config.check_int(f"{cls.__name__}.{f.name}", f.default, *config.int_floor(cls, f.name, f.default))
                checked += 1
    assert checked > 40
    assert set(config.INT_FLOORS) <= {f"{c.__name__}.{f.name}" for c in seen for f in dataclasses.fields(c)}


def test_switching_a_backend_drops_the_options_written_for_the_old_one():
    # the default's program teacher writes `columns`; a dummy teacher has no `style` option
    assert load_recipe("default").teacher.options == {"style": "columns"}
    assert load_recipe("default", ["teacher.backend=dummy"]).teacher.options == {}
    # options given in the same overrides are the new backend's own
    recipe = load_recipe("default", ["teacher.backend=program", "teacher.options.style=digits"])
    assert recipe.teacher.options == {"style": "digits"}
    served = ["teacher.backend=openai", "teacher.model=m", "teacher.options.base_url=http://127.0.0.1:1/v1"]
    assert load_recipe("default", served).teacher.options == {"base_url": "http://127.0.0.1:1/v1"}
    assert load_recipe("default", served[2:] + served[:2]).teacher.options == {"base_url": "http://127.0.0.1:1/v1"}
    assert load_recipe("default", ["teacher.backend=program"]).teacher.options == {"style": "columns"}  # same backend
    with pytest.raises(ConfigError, match="teacher.options.style"):  # a wrong option is still refused
        load_recipe("default", ["teacher.backend=dummy", "teacher.options.style=columns"])
