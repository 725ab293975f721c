"""Pick the sentence-encoder runtime: `make_encoder(config, runtime)`.

CPU runtimes (setting TANDEM_CPU_RUNTIME):

- `onnx-int8` (default): ONNX Runtime, dynamic int8 per-channel MatMul weights. The fastest on the
  2-core CPU measured and within a point of fp32 zero-shot accuracy (bench/README.md "prelabel").
- `onnx`: ONNX Runtime fp32 (the reference numbers, torch-free).
- `torch`: PyTorch fp32 (`modelsvc.runtime.hf.Encoder`).
- `torch-int8`: PyTorch dynamic int8 (per-tensor): fast, but its embeddings drift from fp32.

On CUDA the runtime is always torch (bf16). Every encoder has `embed(texts, *, batch_size=32,
pad_to=None) -> np.ndarray`, `hidden_size` and `device` (`.type` is "cpu" or "cuda").
torch is imported only for the torch runtimes, or to ask whether CUDA is there when `config.device`
is None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from modelsvc.runtime.hf import EncoderConfig

RUNTIMES = ("onnx-int8", "onnx", "torch", "torch-int8")
DEFAULT_CPU_RUNTIME = "onnx-int8"


class SentenceEncoder(Protocol):
    hidden_size: int
    device: Any

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, pad_to: int | None = None) -> np.ndarray: ...


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def make_encoder(config: EncoderConfig, runtime: str = DEFAULT_CPU_RUNTIME) -> SentenceEncoder:
    """The encoder for `config` on `runtime` (one of RUNTIMES); CUDA always gets torch bf16."""
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown encoder runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}.")
    cuda = config.device == "cuda" or (config.device is None and _cuda_available())
    if cuda or runtime in ("torch", "torch-int8"):
        from modelsvc.runtime.hf import Encoder

        return Encoder(dataclasses.replace(config, quantize_int8=runtime == "torch-int8" and not cuda))
    from modelsvc.runtime.onnx import OnnxEncoder

    return OnnxEncoder(dataclasses.replace(config, device="cpu", quantize_int8=runtime == "onnx-int8"))
