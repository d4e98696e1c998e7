import pytest

from reasondistill.config import VerifyConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem
from reasondistill.train import rewards
from reasondistill.train.grpo import problems_dataset
from reasondistill.train.rewards import RewardConfig, build_rewards, problem_columns, problems_from_columns


def conv(text):
    return [{"role": "assistant", "content": text}]


def trl_call(func, problems, texts, n_gen, completion_ids=None):
    """Call ``func`` the way GRPOTrainer does: dataset columns repeated once per generation."""
    ds = problems_dataset(problems)
    rows = [ds[i] for i in range(len(ds)) for _ in range(n_gen)]
    columns = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"}
    return func(prompts=[r["prompt"] for r in rows], completions=[conv(t) for t in texts],
                completion_ids=completion_ids or [[0] * 3 for _ in texts], trainer_state=None,
                log_extra=lambda *a: None, log_metric=lambda *a: None, **columns)


def test_correctness_scores_with_the_pipeline_verifier():
    probs = [Problem("p1", "t", "3 + 4 =", "7"), Problem("p2", "t", "2 * 5 =", "10")]
    funcs, weights = build_rewards(RewardConfig(correctness_weight=1.0, format_weight=0.0))
    assert weights == [1.0] and rewards.reward_name(funcs[0]) == "correctness"
    out = trl_call(funcs[0], probs, ["3 + 4 = 7\nAnswer: 7", "Answer: 8", "ten\nAnswer: 10", "I don't know"], 2)
    assert out == [1.0, 0.0, 1.0, 0.0]


def test_problem_rebuilt_from_columns_keeps_meta_and_question():
    p = Problem("p9", "gsm", "How many?", "42", meta={"task": "x", "nested": {"a": [1, 2]}})
    cols = problem_columns(p)
    assert isinstance(cols["meta"], str)  # Arrow-friendly
    (back,) = problems_from_columns(1, **{k: [v] for k, v in cols.items()})
    assert back == p
    # without a question column the prompt falls back to the last user message
    (back2,) = problems_from_columns(1, id=["p9"], answer=["42"], prompts=[[{"role": "user", "content": "Q?"}]])
    assert back2.prompt == "Q?" and back2.meta == {}
    with pytest.raises(ConfigError, match="'answer' column"):
        problems_from_columns(1, id=["p9"])


def test_answer_format_is_verifier_formatted_flag():
    out = rewards.answer_format(prompts=[None] * 4, completions=[conv("so\nAnswer: 5"), conv("\\boxed{5}"),
                                                                conv("it is 5"), "Final answer: 3"])
    assert out == [1.0, 1.0, 0.0, 1.0]


def test_length_penalty_is_zero_under_budget_then_linear_and_capped():
    ids = [[1] * n for n in (2, 4, 6, 100)]
    out = rewards.length_penalty(prompts=[None] * 4, completions=[""] * 4, completion_ids=ids,
                                 budget_tokens=4, length_cap=1.0)
    assert out == [0.0, 0.0, -0.5, -1.0]


def test_length_penalty_counts_with_a_tokenizer_without_ids():
    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": text.split()}

    out = rewards.length_penalty(prompts=[None], completions=[conv("a b c d e f")], tokenizer=Tok(), budget_tokens=3)
    assert out == [-1.0]


def test_build_rewards_drops_zero_weights_and_passes_verify_config():
    funcs, weights = build_rewards(RewardConfig(correctness_weight=2.0, format_weight=0.0, length_weight=0.5,
                                                budget_tokens=8), VerifyConfig(verifier="exact"))
    assert [rewards.reward_name(f) for f in funcs] == ["correctness", "length_penalty"]
    assert weights == [2.0, 0.5]
    assert funcs[0].keywords["verify_cfg"].verifier == "exact"
    assert funcs[1].keywords["budget_tokens"] == 8


@pytest.mark.parametrize("kwargs, match", [
    ({"correctness_weight": -1.0}, "correctness_weight"),
    ({"correctness_weight": 0.0, "format_weight": 0.0}, "every reward weight is 0"),
    ({"budget_tokens": 0}, "budget_tokens"),
])
def test_reward_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RewardConfig(**kwargs)
