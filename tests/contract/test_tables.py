"""Every row of every name table meets its kind's contract (``checks.py``)."""

import pytest

from reasondistill.backends import BACKENDS
from reasondistill.curate import POLICIES
from reasondistill.generate import MODES
from reasondistill.problems import SOURCES
from reasondistill.tasks import TASKS
from reasondistill.train import OBJECTIVES
from reasondistill.train.losses import LOSSES
from reasondistill.grading import VERIFIERS

from . import checks


#: rows that talk to a server, and the options that point them at a fake one started for the test
SERVED = {"openai": lambda fake_openai: {"base_url": fake_openai.url}}


def engine_model(name, tiny_model_dir, monkeypatch, tmp_path):
    """The model a row loads. vLLM has no CPU build, so its engine is faked; llama.cpp runs the
    packaged GGUF where ``llama_cpp`` is installed and a fake engine elsewhere."""
    if name == "vllm":
        import sys

        from tests import fake_vllm
        monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    if name == "llamacpp":
        import importlib.util

        from reasondistill import models
        if importlib.util.find_spec("llama_cpp") is not None:
            return models.packaged_gguf("smollm2-135m-instruct")
        from tests import fake_llama_cpp
        fake_llama_cpp.install(monkeypatch)
        (tmp_path / "toy.gguf").write_bytes(b"GGUF toy")
        return tmp_path / "toy.gguf"
    return tiny_model_dir


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend(name, tiny_model_dir, request, monkeypatch, tmp_path):
    options = SERVED[name](request.getfixturevalue("fake_openai")) if name in SERVED else None
    checks.check_backend(name, engine_model(name, tiny_model_dir, monkeypatch, tmp_path), options)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_as_student(name, tiny_model_dir, request, monkeypatch, tmp_path):
    """Any backend for any role: every row evaluates a student the way it serves a teacher."""
    options = SERVED[name](request.getfixturevalue("fake_openai")) if name in SERVED else None
    checks.check_student(name, engine_model(name, tiny_model_dir, monkeypatch, tmp_path), options, tmp_path)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_as_live_teacher(name, tiny_model_dir, monkeypatch, tmp_path):
    """Any row that can score serves as a token-level teacher (GKD, KD, KDRL) through ``score``,
    against the student's tokenizer (a served row: a fake server that tokenizes with it)."""
    from reasondistill import models
    from tests.fake_openai import FakeOpenAI

    tok = models.load_tokenizer(str(tiny_model_dir))
    model = engine_model(name, tiny_model_dir, monkeypatch, tmp_path)
    if name == "llamacpp" and not str(model).endswith("smollm2-135m-instruct.gguf"):
        from tests import fake_llama_cpp
        fake_llama_cpp.mirror(monkeypatch, tok)  # the fake GGUF tokenizes as the student does
    if name == "openai":
        with FakeOpenAI(tokenizer=tok) as server:
            checks.check_scorer(name, model, {"base_url": server.url, "score_ids": True}, tok)
        return
    checks.check_scorer(name, model, None, tok)


@pytest.mark.parametrize("name", list(VERIFIERS))
def test_verifier(name):
    checks.check_verifier(name)


@pytest.mark.parametrize("name", list(POLICIES))
def test_policy(name, tiny_model_dir):
    from reasondistill.config import CurateConfig

    from tests.helpers import curate_all_on

    checks.check_policy_row(POLICIES[name])
    for cfg in (CurateConfig(), CurateConfig(include_hinted=False, drop_truncated=False, require_format=False),
                curate_all_on(tiny_model_dir), curate_all_on(tiny_model_dir, first=name)):
        checks.check_policy(POLICIES[name], cfg)


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss(name):
    checks.check_loss(LOSSES[name])
    checks.check_loss_options(name)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objective(name):
    checks.check_objective(name)


@pytest.mark.parametrize("task", list(TASKS))
def test_task(task):
    checks.check_task(task)


@pytest.mark.parametrize("name", list(SOURCES))
def test_source(name):
    checks.check_source(name)


@pytest.mark.parametrize("name", list(MODES))
def test_mode(name):
    checks.check_mode(name)
