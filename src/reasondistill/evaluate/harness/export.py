"""Export a model as a self-contained Hugging Face folder that other tools load as they are.

External evaluators (lm-evaluation-harness, lighteval, vLLM, ``transformers serve``) load a
folder with ``AutoModelForCausalLM.from_pretrained(DIR)`` and read the chat template and the
generation defaults from it, so everything they need goes into the folder: safetensors weights,
the tokenizer with its chat template, ``generation_config.json`` (greedy, stopping on the
tokenizer's end-of-turn token) and our checkpoint note (task prefixes). Nothing in the folder
asks for ``trust_remote_code`` or a network.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ... import io, models
from ...errors import ConfigError
from ...layout import Layout

EXPORT_NOTE = "reasondistill_export.json"  # provenance of an exported folder
REQUIRED = ("config.json", "generation_config.json", "tokenizer_config.json")


@dataclass(frozen=True, slots=True)
class Exported:
    """What :func:`export` wrote: the folder, the model it came from, and its files."""

    path: str
    source: str
    identity: str
    chat_template: bool
    files: list[str]


def source_model(spec: str | Path) -> str:
    """The model folder behind ``spec``: a run folder's trained checkpoint (``train/model``),
    a model folder, a ``.gguf`` file or a packaged name."""
    p = Path(spec)
    if p.is_dir() and not (p / "config.json").exists():
        ckpt = Layout(p).checkpoint
        if not (ckpt / "config.json").exists():
            raise ConfigError(f"{p} is neither a model folder (no config.json) nor a run folder with a "
                              f"trained checkpoint ({ckpt} has no config.json)")
        return str(ckpt)
    return str(spec)


def is_self_contained(path: str | Path) -> bool:
    """Whether ``path`` already is an exported folder (so it can be handed to a harness as is)."""
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in REQUIRED) and any(p.glob("*.safetensors")) \
        and (p / EXPORT_NOTE).is_file()


def export(spec: str | Path, out: str | Path, *, dtype: str = "float32") -> Exported:
    """Write ``spec`` (see :func:`source_model`) into ``out`` as a self-contained HF folder.

    Written to a temporary sibling and renamed, so ``out`` is either the old folder or a
    complete export; refuses a model whose config needs remote code.
    """
    import torch
    from transformers import GenerationConfig

    ref = models.resolve(source_model(spec))
    out = Path(out)
    config = json.loads((Path(ref.path) / "config.json").read_text(encoding="utf-8")) \
        if Path(ref.path).is_dir() else {}
    if config.get("auto_map"):
        raise ConfigError(f"{ref.path}/config.json: field 'auto_map': the model needs remote code, so its export "
                          "would not load without trust_remote_code")
    tok = models.load_tokenizer(ref.path)
    model = models.load_model(ref.path, dtype=dtype, device="cpu")
    old = getattr(model, "generation_config", None) or GenerationConfig()
    eos = sorted({*_as_list(tok.eos_token_id), *_as_list(old.eos_token_id)})
    # greedy by default, as our evaluation decodes; stop on the end-of-turn token the chat template emits
    gen = GenerationConfig(bos_token_id=old.bos_token_id, eos_token_id=eos[0] if len(eos) == 1 else eos or None,
                           pad_token_id=tok.pad_token_id, do_sample=False)
    model.generation_config = gen
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with torch.no_grad():
        model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    gen.save_pretrained(tmp)
    if (note := Path(ref.path) / models.CHECKPOINT_NOTE).is_file():
        shutil.copy2(note, tmp / models.CHECKPOINT_NOTE)
    chat = bool(getattr(tok, "chat_template", None))
    files = sorted(f.name for f in tmp.iterdir()) + [EXPORT_NOTE]
    result = Exported(path=str(out), source=str(spec), identity=ref.identity, chat_template=chat, files=sorted(files))
    io.write_json(tmp / EXPORT_NOTE, {**asdict(result), "dtype": dtype, "versions": io.library_versions()})
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return result


def _as_list(ids: int | list[int] | None) -> list[int]:
    if ids is None:
        return []
    return [ids] if isinstance(ids, int) else list(ids)
