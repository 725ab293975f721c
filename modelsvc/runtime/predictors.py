"""The predictors of ModelVersions: `load_predictor(spec, ...)` and the zero-shot predictor.

Torch-free. A zero-shot classification or multilabel version runs on any encoder (ONNX on a CPU worker);
span projects need per-token states and fine-tuned versions need their trained head, which only the
torch runtime (modelsvc.runtime.hf) gives: it is imported for those alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelsvc.contracts import Predictor, PredictorBase, PredictorSpec, bio_tags
from modelsvc.runtime.config import EncoderConfig, ModelLoadError, SentenceEncoder, cuda_available
from modelsvc.runtime.encoders import shared_encoder
from modelsvc.zeroshot import DEFAULT_TEMPERATURE, label_prompts, zero_shot_probabilities

MULTILABEL_THRESHOLD = 0.35  # cold start: cosine above which a label is suggested (MiniLM's band)
SPAN_THRESHOLD = 0.40  # cold start: a token's cosine to a label above which it is tagged


class ZeroShotPredictor(PredictorBase):
    """Cold start: label-name (and description) similarity over the base encoder, no training.

    classification: softmax over labels of cosine / temperature (modelsvc.zeroshot);
    multilabel: per label sigmoid((cosine - MULTILABEL_THRESHOLD) / temperature);
    spans: per token, "O" against each label's cosine to the token's state, as BIO marginals.
    """

    def __init__(self, spec: PredictorSpec, encoder: SentenceEncoder, *, batch_size: int = 32) -> None:
        self.spec = spec
        self.encoder = encoder
        self.batch_size = batch_size
        self.temperature = DEFAULT_TEMPERATURE
        prompts = label_prompts([{"name": n, "description": d} for n, d in spec.labels])
        self.label_embeddings = encoder.embed(prompts, batch_size=batch_size)
        self.names = spec.label_names
        self.tags = bio_tags(self.names)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.embed(texts, batch_size=self.batch_size)

    def _probabilities(self, texts: Sequence[str]) -> np.ndarray:
        emb = self.encoder.embed(texts, batch_size=self.batch_size)
        if self.spec.task_type == "multilabel":
            sims = emb.astype(np.float64) @ self.label_embeddings.astype(np.float64).T
            return 1.0 / (1.0 + np.exp(-(sims - MULTILABEL_THRESHOLD) / self.temperature))
        return zero_shot_probabilities(emb, self.label_embeddings, temperature=self.temperature)

    def _span_outputs(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        from modelsvc.runtime.hf import Encoder, token_embeddings

        if not isinstance(self.encoder, Encoder):
            raise ModelLoadError("Span projects need per-token states, which only the torch runtime gives.")
        out = []
        k = len(self.names)
        for offsets, states in token_embeddings(self.encoder, texts, batch_size=self.batch_size):
            t = len(offsets)
            marginals = np.zeros((t, 1 + 2 * k))
            if t:
                sims = states.astype(np.float64) @ self.label_embeddings.astype(np.float64).T  # (t, k)
                logits = np.concatenate([np.full((t, 1), SPAN_THRESHOLD), sims], axis=1) / self.temperature
                logits -= logits.max(axis=1, keepdims=True)
                p = np.exp(logits)
                p /= p.sum(axis=1, keepdims=True)  # (t, 1 + k): O, then each label
                best = p.argmax(axis=1)
                marginals[:, 0] = p[:, 0]
                for j in range(k):
                    # a token continues a span when the previous token's best label is the same one
                    cont = np.zeros(t, dtype=bool)
                    cont[1:] = best[:-1] == j + 1
                    marginals[:, 1 + 2 * j] = np.where(cont, 0.0, p[:, j + 1])
                    marginals[:, 2 + 2 * j] = np.where(cont, p[:, j + 1], 0.0)
            out.append((offsets, marginals))
        return out


def load_predictor(
    spec: PredictorSpec,
    *,
    cpu_threads: int | None,
    batch_size: int,
    gpu_batch_size: int = 1024,
    runtime: str = "torch",
    cache_dir: str | None = None,
) -> Predictor:
    """The predictor for a ModelVersion spec: its fine-tuned artifact, or zero-shot over the base encoder.

    On CUDA the encoder runs in bf16 with `gpu_batch_size`; on CPU `runtime` picks torch fp32,
    torch-int8, onnx or onnx-int8 (modelsvc.runtime.config) with `cpu_threads` threads.
    """
    cuda = cuda_available()
    if spec.kind == "fine_tuned":
        from modelsvc.runtime.hf import FineTunedPredictor

        return FineTunedPredictor(spec, batch_size=gpu_batch_size if cuda else batch_size, cpu_threads=cpu_threads)
    if spec.kind != "zero_shot":
        raise ModelLoadError(f"model kind {spec.kind!r} is not supported by this worker")
    if cuda or spec.task_type == "spans":
        runtime = "torch"
    config = EncoderConfig(model_path=spec.model_path or None, cpu_threads=cpu_threads, cache_dir=cache_dir)
    encoder = shared_encoder(config, runtime)
    return ZeroShotPredictor(spec, encoder, batch_size=gpu_batch_size if cuda else batch_size)
