"""Tiny Llamas over a small vocabulary trained here, for tests that must see learning in a few CPU steps.

With SmolLM2's 49152-token vocabulary a random model's samples almost never repeat a token, so
sample-based objectives (GRPO, KL on the student's own samples) move its distribution far too
slowly for a unit test, and every step pays for 49152-wide logits. A ~350-token byte-level BPE
has SmolLM2's special tokens and a ChatML template, so prompts and completions render the same
way, with the end of an assistant turn being the eos token.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

CORPUS = [f"{a} + {b} = {a + b}\nAnswer: {a + b}" for a in range(10) for b in range(10)] + [
    "Solve the problem step by step. End with a line of the form \"Answer: <final answer>\".",
    "We add the numbers. The sum is the answer.",
]


@pytest.fixture()
def one_thread():
    """Run a test on one intra-op thread. Tiny models gain nothing from more, and on a shared CPU
    OpenMP threads waiting for a busy core made these tests ~15x slower (2 s -> 36 s measured)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_tokenizer(vocab_size: int = 384):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(CORPUS * 5, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = CHATML
    return tok


def tiny_llama(out: Path, tok, *, extra_rows: int = 0, init_range: float = 0.02, seed: int = 0,
               weights: bool = True) -> Path:
    """Save a 2-layer random Llama (or only its config, ``weights=False``) with ``tok`` into ``out``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok) + extra_rows, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=True, initializer_range=init_range, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    if weights:
        LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    else:
        cfg.save_pretrained(out)
    tok.save_pretrained(out)
    return out



def half_vocab_teacher(out: Path, tok, *, extra_rows: int = 16, seed: int = 1) -> Path:
    """A teacher that, in every context, gives the lower half of the vocabulary (ids < len(tok) // 2)
    almost all its probability, plus ``extra_rows`` padded output rows.

    Built from a random tiny Llama: a constant first embedding dimension makes the first coordinate of
    every final hidden state large and positive, and an untied head row with a negative first
    coordinate then puts any token about 12 logits down, whatever the context. Reverse KL towards
    it is the distillation analogue of an easy reward: the student has to move mass into a fixed set.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    n = len(tok)
    cfg = LlamaConfig(vocab_size=n + extra_rows, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    teacher = LlamaForCausalLM(cfg)
    with torch.no_grad():
        teacher.get_input_embeddings().weight[:, 0] = 1.0
        head = teacher.get_output_embeddings().weight
        head[:, 0] = 0.0
        head[n // 2:, 0] = -1.5
    out.mkdir(parents=True, exist_ok=True)
    teacher.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
