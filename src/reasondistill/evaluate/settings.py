"""The full settings a score was measured under, stored in every ``summary.json``.

A score means little without them: the same checkpoint scores differently under another prompt,
chat template, token budget, checker version or dtype. ``summary.json["settings"]`` records
them all, grouped as

- ``model``: name, spec, backend identity, a content hash of the weights (``weights_sha256``) and
  of the chat template the backend applied (``chat_template_sha256``);
- ``prompt``: a hash of the prompt template text, of the few-shot turns before each question
  (``prefix_sha256``), the task prefix, style and few-shot count;
- ``sampling``: greedy plus the sampled runs' temperature, top_p, seed, samples/seeds, max tokens;
- ``checker``: the verifier setting, the verifiers actually picked, their options and the
  versions of math-verify, reasoning-gym and reasondistill (whose code extracts the answers);
- ``problems``: the problem file's sha256 and count (``path`` is informational);
- ``libraries``: torch, transformers, reasondistill, python;
- ``runtime``: device and dtype.

Comparing two scores (:mod:`.compare_scores`) requires every setting to match except the
``model`` group, which is the thing being compared, and ``problems.path`` (the same file may
live in two places; its hash must match).

Weight hashes are full sha256s of the weight files, cached by path, size and mtime in
``<cache>/weight_hashes.json`` (:func:`reasondistill.models.file_sha256`), so a model is hashed
once, not at every evaluation; the hash itself is of the bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import io, models
from ..config import EvalConfig, PromptConfig, VerifyConfig
from ..prompts import template_text
from ..records import Problem

# flattened keys that may differ between two compared scores: the model itself, and where the file is
MODEL_GROUP = "model"
INFORMATIONAL = ("problems.path",)
CHECKER_PACKAGES = ("math-verify", "reasoning-gym", "reasondistill")
LIBRARIES = ("torch", "transformers", "reasondistill")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _sha256_text(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


file_sha256 = models.file_sha256  # cached by (absolute path, size, mtime): a model is hashed once


def weights_sha256(spec: str) -> str | None:
    """A content hash of a model's weights: the GGUF file's sha256 for a ``.gguf`` or packaged
    model; for a folder, the sha256 of its safetensors files' hashes (and index) in name order;
    ``None`` for what has no local weights (a hub id, a served model)."""
    if spec in models.PACKAGED:
        return file_sha256(models.packaged_gguf(spec))
    p = Path(spec).expanduser()
    if p.suffix == ".gguf" and p.is_file():
        return file_sha256(p)
    if p.is_dir():
        files = sorted(p.glob("*.safetensors")) + sorted(p.glob("*.safetensors.index.json"))
        if not files:
            return None
        return hashlib.sha256("".join(f"{f.name}:{file_sha256(f)}\n" for f in files).encode()).hexdigest()
    return None


def chat_template_of(backend: Any) -> str | None:
    """The chat template a backend applies itself (a transformers tokenizer's); ``None`` where a
    server applies its own or there is none (a program teacher)."""
    tok = getattr(backend, "tokenizer", None)
    template = getattr(tok, "chat_template", None)
    return template if isinstance(template, str) else None


def device_of(backend: Any) -> str:
    model = getattr(backend, "model", None)
    device = getattr(model, "device", None)
    if device is not None:
        return str(device)
    return "remote" if getattr(backend, "options", None) is not None and hasattr(backend.options, "base_url") \
        else "none"


def model_settings(name: str, identity: str, backend: Any, *, spec: str | None = None,
                   backend_name: str | None = None) -> dict[str, Any]:
    """The ``model`` group: what is being scored."""
    return {"name": name, "spec": spec, "backend": backend_name or getattr(backend, "name", None),
            "identity": identity, "weights_sha256": weights_sha256(spec) if spec else None,
            "chat_template_sha256": _sha256_text(chat_template_of(backend))}


def build(cfg: EvalConfig, verify_cfg: VerifyConfig, prompt_cfg: PromptConfig | None, problems_path: str | Path,
          problems: list[Problem], *, model: dict[str, Any], prefix: list[dict[str, str]] | None,
          task_prefix: str | None, dtype: str | None, device: str) -> dict[str, Any]:
    """Every setting of one evaluation (see the module docstring)."""
    from ..grading import pick_verifier

    prompt_cfg = prompt_cfg or PromptConfig()
    sampled = bool(cfg.samples or cfg.seeds)
    picked = sorted({pick_verifier(p) for p in problems}) if verify_cfg.verifier == "auto" else [verify_cfg.verifier]
    # one template, unless a task row brings its own prompt format
    templates = sorted({template_text(prompt_cfg, p) for p in problems} or {template_text(prompt_cfg)})
    return {
        "model": model,
        "prompt": {"style": prompt_cfg.style, "template_sha256": _sha256_text("\n".join(templates)),
                   "few_shot": prompt_cfg.few_shot,
                   "prefix_sha256": io.sha256_json(prefix) if prefix else None, "task_prefix": task_prefix},
        # temperature, top_p and seed only shape sampled runs: a greedy-only score does not depend on them
        "sampling": {"greedy": True, "temperature": cfg.temperature if sampled else None,
                     "top_p": cfg.top_p if sampled else None, "seed": cfg.seed if sampled else None,
                     "samples": cfg.samples, "seeds": cfg.seeds, "max_new_tokens": cfg.max_new_tokens,
                     "n": cfg.n},
        "checker": {"verifier": verify_cfg.verifier, "picked": picked,
                    "fallback_last_number": verify_cfg.fallback_last_number, "timeout_s": verify_cfg.timeout_s,
                    **{f"{name}_version": _version(name) for name in CHECKER_PACKAGES}},
        "problems": {"sha256": io.sha256_file(problems_path), "n": len(problems), "path": str(problems_path)},
        "libraries": {**{name: _version(name) for name in LIBRARIES},
                      "python": io.library_versions()["python"]},
        "runtime": {"device": device, "dtype": dtype},
    }


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"sampling.temperature": 0.7, ...}``: one dotted key per leaf (lists stay whole)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def must_match(key: str) -> bool:
    """Whether ``key`` (dotted) has to be equal for two scores to be compared."""
    return not (key == MODEL_GROUP or key.startswith(MODEL_GROUP + ".") or key in INFORMATIONAL)


def differences(a: dict[str, Any], b: dict[str, Any], allow: list[str] | tuple[str, ...] = ()) -> list[
        tuple[str, Any, Any]]:
    """``[(key, a value, b value)]`` for every setting that must match but does not. ``allow`` names
    keys (``sampling.temperature``) or whole groups (``libraries``) that may differ."""
    fa, fb = flatten(a), flatten(b)
    out = []
    for key in sorted(fa.keys() | fb.keys()):
        if not must_match(key) or any(key == x or key.startswith(x + ".") for x in allow):
            continue
        if fa.get(key, "<missing>") != fb.get(key, "<missing>"):
            out.append((key, fa.get(key, "<missing>"), fb.get(key, "<missing>")))
    return out


def known_keys(*settings: dict[str, Any]) -> set[str]:
    """Every dotted key and group name of ``settings`` (to check ``--allow-different`` names)."""
    keys: set[str] = set()
    for s in settings:
        for key in flatten(s):
            parts = key.split(".")
            keys.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return keys


def config_dict(cfg: EvalConfig) -> dict[str, Any]:
    """``cfg`` as the dict an evaluation is keyed on; ``seeds`` and the student's backend only when
    set, so evaluations finished before they existed are still recognised."""
    d = dataclasses.asdict(cfg)
    defaults = EvalConfig()
    for key in ("seeds", "student_backend", "student_options"):
        if d.get(key) == getattr(defaults, key):
            d.pop(key, None)
    return d
