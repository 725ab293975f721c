"""Model runtimes, loaded lazily in worker processes: `get_predictor(spec)`.

`hf` is the only module (with training) that imports torch / transformers; this module imports it
inside `get_predictor` only, so web code can import modelsvc without pulling torch in.
`fake` is a deterministic predictor for fast unit tests (TANDEM_MODEL_BACKEND=fake), never for
acceptance checks.
"""

from __future__ import annotations

from modelsvc.contracts import Predictor, PredictorSpec

_PREDICTORS: dict[PredictorSpec, Predictor] = {}
_MAX_LOADED = 4  # label sets per process; they share one encoder


def get_predictor(spec: PredictorSpec) -> Predictor:
    """The loaded predictor for `spec`, cached per worker process. Raises ModelUnavailable."""
    predictor = _PREDICTORS.get(spec)
    if predictor is not None:
        return predictor
    from django.conf import settings  # here, so that bench/prelabel.py can import the runtimes without Django

    if spec.backend == "fake":
        from modelsvc.runtime.fake import FakePredictor

        predictor = FakePredictor(spec)
    elif spec.backend == "hf":
        from modelsvc.runtime.hf import load_predictor

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
    if len(_PREDICTORS) >= _MAX_LOADED:
        _PREDICTORS.pop(next(iter(_PREDICTORS)))
    _PREDICTORS[spec] = predictor
    return predictor
