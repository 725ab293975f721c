"""Model runtimes, loaded lazily in worker processes: `get_predictor(spec)`.

    config.py      torch-free: encoder configuration, runtime names, batching, the CUDA question
    encoders.py    torch-free: picks and keeps the encoder (ONNX Runtime or torch) for a runtime name
    predictors.py  torch-free: the zero-shot predictor and `load_predictor` for a ModelVersion spec
    onnx.py        the encoder on ONNX Runtime (no torch); export.py writes its graphs (torch, once)
    hf.py          the encoder on torch + transformers, token states, fine-tuned versions
    fake.py        a deterministic predictor for fast unit tests (TANDEM_MODEL_BACKEND=fake) only

Only hf.py (and modelsvc/training.py) import torch, and only for the torch runtimes, CUDA, span
projects or fine-tuned versions: a CPU worker serving zero-shot versions on ONNX never loads it.
"""

from __future__ import annotations

from modelsvc.contracts import Predictor, PredictorSpec

_PREDICTORS: dict[PredictorSpec, Predictor] = {}
_MAX_LOADED = 4  # label sets per process; they share one encoder


def get_predictor(spec: PredictorSpec, *, cache: bool = True) -> Predictor:
    """The loaded predictor for `spec`, cached per worker process unless `cache` is False (a model
    evaluated once, e.g. a candidate in its staging directory). Raises ModelUnavailable."""
    cached = _PREDICTORS.get(spec)
    if cached is not None:
        return cached
    from django.conf import settings  # here, so that bench/prelabel.py can import the runtimes without Django

    predictor: Predictor
    if spec.backend == "fake":
        from modelsvc.runtime.fake import FakePredictor

        predictor = FakePredictor(spec)
    elif spec.backend == "hf":
        from modelsvc.runtime.predictors import load_predictor

        predictor = load_predictor(
            spec,
            cpu_threads=settings.TANDEM_CPU_THREADS or None,
            batch_size=settings.TANDEM_PRELABEL_BATCH_SIZE,
            gpu_batch_size=settings.TANDEM_GPU_BATCH_SIZE,
            runtime=settings.TANDEM_CPU_RUNTIME,
            cache_dir=str(settings.MODEL_DIR / "onnx"),
        )
    else:
        raise ValueError(f"unknown TANDEM_MODEL_BACKEND {spec.backend!r} (hf or fake)")
    if not cache:
        return predictor
    if len(_PREDICTORS) >= _MAX_LOADED:
        _PREDICTORS.pop(next(iter(_PREDICTORS)))
    _PREDICTORS[spec] = predictor
    return predictor
