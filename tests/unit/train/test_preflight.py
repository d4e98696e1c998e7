import pytest

from reasondistill.errors import ConfigError
from reasondistill.records import TrainExample
from reasondistill.train.preflight import PreflightReport, preflight

NO_EOS_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}:\n{{ m['content'] }}\n{% endfor %}"
                   "{% if add_generation_prompt %}assistant:\n{% endif %}")


@pytest.fixture(scope="module")
def tok(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="module")
def other_tok(tok):
    """A small BPE tokenizer trained here: a genuinely different vocabulary with the same special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(["What is 2 + 3? 2 + 3 = 5. Answer: 5", "Tom has 3 apples and buys 4 more."] * 20,
                            trainer)
    out = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<|im_start|>",
                                  eos_token="<|im_end|>", pad_token="<|im_end|>")
    out.chat_template = tok.chat_template
    return out


def test_identical_tokenizers_pass(tok):
    report = preflight(tok, tok, student_model=len(tok), teacher_model=len(tok))
    assert report.ok and report.shared_vocab == len(tok)
    assert report.stop_ids == [tok.eos_token_id]
    assert "preflight: ok" in report.format()


def test_padded_teacher_rows_pass_with_a_truncation_note(tok, tiny_model_dir):
    from transformers import AutoConfig

    student = AutoConfig.from_pretrained(tiny_model_dir)  # configs are enough: nothing loads
    report = preflight(tok, tok, student_model=student, teacher_model=len(tok) + 128)
    assert report.ok
    assert (report.student_rows, report.teacher_rows, report.shared_vocab) == (49152, 49280, 49152)
    assert any("truncated to the shared vocab size 49152" in n for n in report.notes)


def test_different_tokenizers_are_refused_with_the_sequence_level_hint(tok, other_tok):
    with pytest.raises(ConfigError, match=r"do not share a vocabulary \(student 49152 tokens, teacher \d+; .*"
                                          r"sequence-level distillation"):
        preflight(tok, other_tok)


def test_one_extra_token_is_a_mismatch(tok, smollm2_dir):
    from transformers import AutoTokenizer

    extended = AutoTokenizer.from_pretrained(smollm2_dir)
    extended.add_tokens(["<think_token>"])
    with pytest.raises(ConfigError, match=r"id 49152: None vs '<think_token>'"):
        preflight(tok, extended)


def test_model_with_fewer_rows_than_tokens_is_refused(tok):
    with pytest.raises(ConfigError, match="teacher model has 1000 output rows"):
        preflight(tok, tok, student_model=len(tok), teacher_model=1000)


def test_chatml_completion_ends_with_eos(tok):
    ex = TrainExample(prompt=[{"role": "user", "content": "1 + 1 ="}],
                      completion=[{"role": "assistant", "content": "Answer: 2"}])
    report = preflight(tok, example=ex)
    assert report.ok and any("<|im_end|>" in n for n in report.notes)


def test_template_without_eos_is_reported(smollm2_dir):
    from transformers import AutoTokenizer

    bad = AutoTokenizer.from_pretrained(smollm2_dir)
    bad.chat_template = NO_EOS_TEMPLATE
    report = preflight(bad, example={"prompt": [{"role": "user", "content": "1 + 1 ="}],
                                     "completion": [{"role": "assistant", "content": "Answer: 2"}]})
    assert len(report.warnings) == 1
    assert "not with a token generation stops on ['<|im_end|>' (2)]" in report.warnings[0]
    assert "WARNING" in report.format()


def test_generation_config_eos_counts_as_a_stop_token(smollm2_dir):
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(smollm2_dir)
    # a template whose turns end with <|endoftext|> (id 0), which only the generation config stops on
    t.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>\n"
                       "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert not preflight(t).ok
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[2, 0]), config=SimpleNamespace(
        vocab_size=len(t)))
    report = preflight(t, student_model=model)
    assert report.ok and report.stop_ids == [2, 0]


def test_unbalanced_losses_get_a_weight_suggestion(tok):
    report = preflight(tok, losses={"ce": 2.5, "kl": 0.005})
    assert not report.ok
    assert "differ 500x" in report.warnings[0] and "'kl' barely moves training" in report.warnings[0]
    assert report.suggested_weights == pytest.approx({"ce": 1.0, "kl": 500.0})
    balanced = preflight(tok, losses={"ce": 2.5, "kl": 0.4})
    assert balanced.ok and not balanced.suggested_weights


def test_zero_or_nan_loss_is_a_warning(tok):
    report = preflight(tok, losses={"ce": 2.0, "aux": 0.0, "kl": float("nan")})
    assert len(report.warnings) == 2


def test_report_format_lists_warnings_and_notes():
    r = PreflightReport(warnings=["w1"], notes=["n1"])
    assert r.format() == "preflight: 1 warning(s)\n  WARNING: w1\n  note: n1"
    assert r.to_dict()["ok"] is False


def test_first_batch_loss_check_runs_once_and_logs_its_warning(caplog):
    from reasondistill.train.preflight import FirstBatchLossCheck, PreflightReport

    report = PreflightReport()
    check = FirstBatchLossCheck(report)
    with caplog.at_level("WARNING"):
        check({"kd": 0.002, "ce": 2.5})
        check({"kd": 1.0, "ce": 1.0})  # later batches are not checked
    assert len(report.warnings) == 1 and "1250x" in report.warnings[0]
    assert report.suggested_weights["kd"] == pytest.approx(1250)
    assert "preflight: loss terms differ" in caplog.text
