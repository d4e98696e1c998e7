"""lm-evaluation-harness over a problem set on disk: our task definition loaded and scored by
lm-eval itself (with a scripted LM, so it is fast), its output parsed and re-graded by our
verifier, and (slow) the whole CLI path on a tiny model in a child process."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import pytest

from reasondistill.config import ProblemsConfig
from reasondistill.evaluate.harness import lmeval, task
from reasondistill.problems.files import read_problem_set
from tests.conftest import SHARED_DATA
from tests.helpers import harness_cli_result

GSM8K = SHARED_DATA / "gsm8k"
require_lm_eval = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None,
                                     reason="lm-eval not installed (pip install 'reasondistill[harness]')")
require_gsm8k = pytest.mark.skipif(not (GSM8K / "test.jsonl").is_file(), reason="../shared/data/gsm8k missing")


def _problems(n: int = 3):
    return read_problem_set(GSM8K, ProblemsConfig())[:n]


@require_gsm8k
def test_task_yaml_points_at_the_problems_on_disk(tmp_path: Path):
    import yaml

    problems = _problems()
    data = task.write_dataset(problems, tmp_path / task.DATA_FILE)
    folder = lmeval.write_task(data, tmp_path, max_new_tokens=16)
    cfg = yaml.safe_load((folder / f"{task.TASK_NAME}.yaml").read_text())
    assert cfg["dataset_path"] == "json"
    assert Path(cfg["dataset_kwargs"]["data_files"]["test"]) == data.resolve()
    assert cfg["generation_kwargs"]["max_gen_toks"] == 16 and cfg["generation_kwargs"]["do_sample"] is False
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["gsm8k-test-0", "gsm8k-test-1", "gsm8k-test-2"]
    assert rows[0]["answer"] == "18"  # the gold after '####', not the worked solution
    assert rows[0]["question"].startswith(problems[0].prompt) and 'Answer: <final answer>' in rows[0]["question"]


class ScriptedLM:
    """An ``lm_eval`` LM whose generations are given per problem id, with a toy chat template:
    lm-eval's own task loading, filters and metric run on them."""

    def __new__(cls, replies: dict[str, str]):
        from lm_eval.api.model import LM

        class _LM(LM):
            prompts: list[str] = []

            def loglikelihood(self, requests):
                raise NotImplementedError

            def loglikelihood_rolling(self, requests):
                raise NotImplementedError

            def generate_until(self, requests):
                out = []
                for r in requests:
                    self.prompts.append(r.args[0])
                    out.append(replies[r.doc["id"]])
                return out

            def apply_chat_template(self, chat_history, add_generation_prompt=True):
                return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in chat_history) + "<assistant>"

            @property
            def tokenizer_name(self):
                return "scripted"

        return _LM()


@require_lm_eval
@require_gsm8k
def test_lm_eval_scores_our_task_and_we_regrade_its_generations(tmp_path: Path):
    problems = _problems()
    data = task.write_dataset(problems, tmp_path / task.DATA_FILE)
    folder = lmeval.write_task(data, tmp_path, max_new_tokens=16)
    replies = {"gsm8k-test-0": "16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\nAnswer: $18",    # both pass
               "gsm8k-test-1": "2 + 1 = 3 bolts, so the final answer is 3",         # no Answer: line
               "gsm8k-test-2": "Answer: 12"}                                        # wrong
    lm = ScriptedLM(replies)
    raw = lmeval.evaluate_lm(lm, folder)
    assert f"<user>{problems[0].prompt}" in lm.prompts[0]  # our prompt, as the chat template's user turn
    (tmp_path / lmeval.RAW_FILE).write_text(json.dumps(raw))

    score, rows = lmeval.parse(tmp_path / lmeval.RAW_FILE)
    assert score == pytest.approx(1 / 3)  # lm-eval's exact_match: only the Answer: line counts
    assert [r[0] for r in rows] == list(replies)
    assert [r[1] for r in rows] == list(replies.values())  # raw generations, before lm-eval's filter
    assert rows[0][2] == "18" and rows[1][2] is None

    both, ours = task.regrade({p.id: p for p in problems}, rows, "scripted")
    result = task.write_result(tmp_path, harness=lmeval.NAME, version="0.4.13", model="scripted",
                               metric=lmeval.METRIC, harness_score=score, both=both, ours=ours,
                               max_new_tokens=16, files=[], wall_seconds=0.0)
    # our verifier falls back to the last number, so it also credits the reply without an Answer: line
    assert [b.our_passed for b in both] == [True, True, False]
    assert [b.harness_score for b in both] == [1.0, 0.0, 0.0]
    assert result.our_score == pytest.approx(2 / 3) and result.agreement == pytest.approx(2 / 3)
    saved = json.loads((tmp_path / task.RESULT_FILE).read_text())
    assert saved["harness_version"] == "0.4.13" and saved["harness_score"] == pytest.approx(1 / 3)
    assert len((tmp_path / task.HARNESS_SAMPLES_FILE).read_text().splitlines()) == 3


def test_parse_names_a_missing_metric(tmp_path: Path):
    from reasondistill.errors import ConfigError

    f = tmp_path / lmeval.RAW_FILE
    f.write_text(json.dumps({"results": {task.TASK_NAME: {"acc,none": 1.0}}, "samples": {task.TASK_NAME: []}}))
    with pytest.raises(ConfigError, match="exact_match,answer-line"):
        lmeval.parse(f)


def test_cli_harness_refuses_the_teacher(tmp_path: Path, capsys: pytest.CaptureFixture):
    from reasondistill.cli import main

    rc = main(["evaluate", "--harness", "lm-eval", "--model", "teacher", "--problems", str(tmp_path),
               "--out", str(tmp_path / "out")])
    assert rc == 2 and "not 'teacher'" in capsys.readouterr().err


@pytest.mark.slow
@require_lm_eval
@require_gsm8k
def test_cli_runs_lm_eval_offline_on_a_tiny_model(tiny_model_dir: Path, tmp_path: Path):
    """The whole path: export, task, lm-eval in a child process (HF offline), result.json."""
    out = tmp_path / "harness"
    result = harness_cli_result("lm-eval", tiny_model_dir, GSM8K, out)
    assert result["harness_version"] == importlib.metadata.version("lm_eval")
    raw = json.loads((out / lmeval.RAW_FILE).read_text())
    gens = [s["resps"][0][0] for s in sorted(raw["samples"][task.TASK_NAME], key=lambda s: s["doc_id"])]
    both = [json.loads(line) for line in (out / task.HARNESS_SAMPLES_FILE).read_text().splitlines()]
    assert [b["generation"] for b in both] == gens  # we graded exactly what the harness generated
    assert (out / "model" / "generation_config.json").is_file()  # the model went through export first
