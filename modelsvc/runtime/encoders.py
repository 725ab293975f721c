"""Pick and keep the sentence encoder: `make_encoder(config, runtime)` and `shared_encoder(config, runtime)`.

Torch-free: the runtime modules are imported when an encoder of theirs is made (hf.py for the torch
runtimes and CUDA, onnx.py for the ONNX ones), so choosing ONNX never loads torch. Neither runtime
module imports this one, so there is no cycle.
"""

from __future__ import annotations

import dataclasses

from modelsvc.runtime.config import (
    DEFAULT_CPU_RUNTIME,
    RUNTIMES,
    TORCH_RUNTIMES,
    EncoderConfig,
    SentenceEncoder,
    cuda_available,
)

_ENCODERS: dict[tuple, SentenceEncoder] = {}


def make_encoder(config: EncoderConfig, runtime: str = DEFAULT_CPU_RUNTIME) -> SentenceEncoder:
    """The encoder for `config` on `runtime` (one of RUNTIMES); CUDA always gets torch bf16."""
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown encoder runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}.")
    cuda = config.device == "cuda" or (config.device is None and cuda_available())
    if cuda or runtime in TORCH_RUNTIMES:
        from modelsvc.runtime.hf import Encoder

        return Encoder(dataclasses.replace(config, quantize_int8=runtime == "torch-int8" and not cuda))
    from modelsvc.runtime.onnx import OnnxEncoder

    return OnnxEncoder(dataclasses.replace(config, device="cpu", quantize_int8=runtime == "onnx-int8"))


def shared_encoder(config: EncoderConfig, runtime: str = DEFAULT_CPU_RUNTIME) -> SentenceEncoder:
    """One loaded encoder per worker process: a new configuration or runtime replaces the previous one
    (the label sets of all zero-shot versions share it)."""
    key = (runtime, config.model_path, config.device, config.max_length, config.cpu_threads, config.cache_dir)
    if key not in _ENCODERS:
        _ENCODERS.clear()
        _ENCODERS[key] = make_encoder(config, runtime)
    return _ENCODERS[key]
