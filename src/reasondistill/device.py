"""What this machine computes natively, and the dtype ``auto`` picks from it.

Why: bf16 is a win only where the hardware computes it. On a CPU without AVX512-BF16 or
AMX, torch emulates bf16 matmuls; the built-in default recipe then took 159 s for one
optimizer step on an AVX2-only CPU, against about 7 s in float32. So ``dtype: auto`` means:

* CUDA: bfloat16 where the device supports it (compute capability 8.0+, or ROCm);
  else float16 on devices with tensor cores (7.0+); else float32.
* CPU: bfloat16 only when bf16 is *native*, else float32. Native means all of:

  1. the CPU has ``avx512_bf16`` or ``amx_bf16`` (x86) or ``bf16`` / ``sve_bf16`` (ARM),
     as ``torch.cpu.get_capabilities()`` reports it (``/proc/cpuinfo`` where torch lacks it);
  2. on x86, torch's own kernels run at AVX512 (``torch.backends.cpu.get_cpu_capability()``,
     which honours ``ATEN_CPU_CAPABILITY``);
  3. ``ONEDNN_MAX_CPU_ISA``, if set, does not cap oneDNN below ``AVX512_CORE_BF16``;
  4. oneDNN says it runs bf16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``).

  Rules 2 and 3 let ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` on a bf16 machine
  behave as an AVX2-only user's machine would, flags notwithstanding.

An explicit ``bfloat16`` on a CPU without native bf16 is honoured, with one warning that
says why and what it costs.

Shared layer: imports only the standard library and :mod:`.errors`; torch lazily.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import os
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float32": "float32", "fp32": "float32",
          "float16": "float16", "fp16": "float16"}
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that exclude its bf16 instructions (AVX512_CORE_BF16 and up)
ONEDNN_BELOW_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                               "AVX512_CORE_VNNI"})
X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
ARM_BF16_FLAGS = ("bf16", "sve_bf16")
#: optional packages besides the backends' engines (a backend row names its own: ``Backend.requires``)
OPTIONAL_PACKAGES = {"ray": "ray", "deepspeed": "deepspeed"}
SLOW_BF16 = ("on an AVX2-only CPU the built-in default recipe took 159 s for its first optimizer step "
             "in emulated bf16, against about 7 s per step in float32")


@dataclass(frozen=True)
class Capability:
    """What was detected, in the terms the dtype rule uses (recorded in manifests and report.json)."""

    device: str  # the device this capability is about: cpu, cuda, cuda:1, ...
    torch_version: str
    cpu_name: str
    cpu_arch: str
    cpu_capability: str  # torch's kernel level: AVX512, AVX2, DEFAULT, ...
    cpu_bf16_flags: tuple[str, ...]  # bf16 instruction flags the CPU has
    onednn_max_cpu_isa: str | None  # the ONEDNN_MAX_CPU_ISA cap, if set
    native_bf16: bool  # for ``device``
    reason: str  # why native_bf16 is what it is
    threads: int  # torch intra-op threads
    interop_threads: int
    cpus: int  # logical CPUs this process may run on
    cuda: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cpu_bf16_flags"] = list(self.cpu_bf16_flags)
        d["cuda"] = [dict(c) for c in self.cuda]
        return d


def normalize(name: str) -> str:
    """Canonical dtype name (``auto``, ``bfloat16``, ``float32``, ``float16``); unknown names are errors."""
    if name == "auto":
        return name
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype '{name}' (choose from auto, {', '.join(DTYPES)})")
    return DTYPES[name]


def pick_device(name: str = "auto") -> str:
    """``auto``: cuda when torch sees a GPU, else cpu; any other name is returned as given."""
    if name != "auto":
        return name
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_native_bf16(flags: dict[str, Any], *, arch: str, cpu_capability: str, onednn_max_isa: str | None,
                    onednn_bf16: bool | None) -> tuple[bool, str]:
    """The CPU rule of the module docstring, on given facts: ``(native, reason)``."""
    wanted = ARM_BF16_FLAGS if arch.lower() in ("aarch64", "arm64") else X86_BF16_FLAGS
    have = [f for f in wanted if flags.get(f)]
    if not have:
        return False, f"the CPU has none of {', '.join(wanted)}; torch kernels at {cpu_capability}"
    if wanted is X86_BF16_FLAGS and not cpu_capability.upper().startswith("AVX512"):
        return False, (f"the CPU has {', '.join(have)} but torch kernels run at {cpu_capability} "
                       f"(ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'unset')})")
    if onednn_max_isa and onednn_max_isa.strip().upper() in ONEDNN_BELOW_BF16:
        return False, f"the CPU has {', '.join(have)} but ONEDNN_MAX_CPU_ISA={onednn_max_isa} caps oneDNN below bf16"
    if onednn_bf16 is False:
        return False, f"the CPU has {', '.join(have)} but oneDNN reports no bf16 support"
    return True, f"the CPU has {', '.join(have)}; torch kernels at {cpu_capability}"


def cuda_dtype(info: dict[str, Any]) -> str:
    """``auto`` on one CUDA device: bf16 where supported, fp16 with tensor cores (7.0+), else fp32."""
    if info.get("bf16"):
        return "bfloat16"
    major, minor = (int(x) for x in str(info.get("capability", "0.0")).split("."))
    return "float16" if (major, minor) >= (7, 0) else "float32"


def _cpu_flags() -> dict[str, Any]:
    """CPU features as torch reports them; ``/proc/cpuinfo`` flags where this torch lacks the API."""
    try:
        import torch
        return dict(torch.cpu.get_capabilities())
    except (AttributeError, RuntimeError):
        pass
    flags: dict[str, Any] = {"architecture": platform.machine()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    flags.update(dict.fromkeys(value.split(), True))
                    break
                if key.strip() == "model name":
                    flags["cpu_name"] = value.strip()
    except OSError:
        pass
    return flags


def _onednn_bf16() -> bool | None:
    import torch
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def _cuda_devices() -> tuple[dict[str, Any], ...]:
    import torch
    if not torch.cuda.is_available():
        return ()
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        major, minor = torch.cuda.get_device_capability(i)
        out.append({"index": i, "name": props.name, "capability": f"{major}.{minor}",
                    "bf16": bool(torch.version.hip) or major >= 8,
                    "memory_gib": round(props.total_memory / 2**30, 1)})
    return tuple(out)


def _cuda_index(device: str) -> int:
    import torch
    _, _, idx = device.partition(":")
    return int(idx) if idx else torch.cuda.current_device()


@functools.lru_cache(maxsize=None)
def detect(device: str = "auto") -> Capability:
    """Detect once per process and device (``detect.cache_clear()`` to look again)."""
    import torch

    device = pick_device(device)
    flags = _cpu_flags()
    arch = str(flags.get("architecture") or platform.machine())
    cpu_capability = torch.backends.cpu.get_cpu_capability()
    onednn_isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or None
    native, reason = cpu_native_bf16(flags, arch=arch, cpu_capability=cpu_capability,
                                     onednn_max_isa=onednn_isa, onednn_bf16=_onednn_bf16())
    cuda = _cuda_devices()
    if device.startswith("cuda"):
        idx = _cuda_index(device)
        gpu = next((c for c in cuda if c["index"] == idx), None)
        if gpu is None:
            native, reason = False, f"{device} is not among torch's {len(cuda)} CUDA device(s)"
        else:
            native = bool(gpu["bf16"])
            reason = f"{gpu['name']} (compute capability {gpu['capability']}) " + (
                "computes bf16" if native else "has no bf16 (needs 8.0+)")
    elif device != "cpu":
        native, reason = False, f"no bf16 rule for device '{device}'; auto picks float32"
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return Capability(device=device, torch_version=torch.__version__, cpu_name=str(flags.get("cpu_name", "")),
                      cpu_arch=arch, cpu_capability=cpu_capability,
                      cpu_bf16_flags=tuple(f for f in X86_BF16_FLAGS + ARM_BF16_FLAGS if flags.get(f)),
                      onednn_max_cpu_isa=onednn_isa, native_bf16=native, reason=reason,
                      threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads(),
                      cpus=cpus, cuda=cuda)


_warned: set[str] = set()


def resolve_dtype(requested: str, device: str = "auto") -> tuple[str, str]:
    """``(dtype name, note)`` for ``requested`` on ``device``: ``auto`` follows the module rule;
    an explicit name is kept, with a one-time warning when it is bf16 on a CPU that emulates it."""
    requested = normalize(requested)
    cap = detect(device)
    if requested == "auto":
        if cap.device.startswith("cuda"):
            gpu = next((c for c in cap.cuda if c["index"] == _cuda_index(cap.device)), None)
            chosen = cuda_dtype(gpu) if gpu else "float32"
        else:
            chosen = "bfloat16" if cap.native_bf16 and cap.device == "cpu" else "float32"
        return chosen, f"auto on {cap.device}: {chosen}, because {cap.reason}"
    if requested == "bfloat16" and cap.device == "cpu" and not cap.native_bf16:
        note = f"bfloat16 on a CPU without native bf16 ({cap.reason}): it runs emulated and slowly; {SLOW_BF16}"
        if "cpu-bf16" not in _warned:
            _warned.add("cpu-bf16")
            log.warning("%s. Use dtype auto or float32 to train at full speed.", note)
        return requested, note
    return requested, f"{requested} as requested on {cap.device}"


def optional_backends(engines: dict[str, str] | None = None) -> dict[str, bool]:
    """Which optional packages are installed: the backends' engines (``engines``: row -> module, from
    ``backends.engine_modules``), then :data:`OPTIONAL_PACKAGES` (found, never imported: some are slow
    or heavy to import)."""
    found = {}
    for name, module in {**(engines or {}), **OPTIONAL_PACKAGES}.items():
        try:
            found[name] = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: already imported without a __spec__
            found[name] = module in sys.modules
    return found
