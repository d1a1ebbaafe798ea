"""Choosing the numeric precision: bf16 autocast only where the hardware computes it natively.

On a CPU without AVX-512 BF16 or AMX, bf16 matrix products are emulated and run hundreds of
times slower than fp32 (measured on this project's 2-core AVX2 machines: 80 GFLOP/s fp32
against 0.3 GFLOP/s bf16), so ``auto`` picks fp32 there. CUDA GPUs with bf16 support get
bf16; older ones fp16 with a gradient scaler.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def resolve(precision: str, device: torch.device) -> str:
    """'auto' | 'fp32' | 'bf16' | 'fp16' -> the precision actually used."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device):
    """A gradient scaler for fp16 (bf16 and fp32 need none)."""
    enabled = precision == "fp16"
    return torch.amp.GradScaler(device.type, enabled=enabled)
