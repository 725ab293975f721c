"""Fine-tuning and calibration on the worker (torch + transformers; with runtime/hf.py the only modules
that import them).

`train()` fine-tunes the encoder with a new head (classification: cross-entropy; multilabel: BCE;
spans: token classification with BIO tags aligned from character offsets), warm-started from a
previous artifact or the base model; batches sorted by length with dynamic padding; early stopping on
the validation loss; a wall-clock budget; deterministic for a seed on one machine. It fits a
temperature on the validation logits (so the confidences experts see are calibrated) and saves
safetensors + tokenizer + config + tandem.json (labels, temperature) into `out_dir`.

No Django here: the orchestration (split, evaluation, registration, promotion) is in
modelsvc/services/training.py.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from modelsvc.contracts import bio_tags
from modelsvc.runtime.config import ModelLoadError, default_model_path, length_batches
from modelsvc.runtime.export import sha256_file

ARTIFACT_META = "tandem.json"
WEIGHTS = "model.safetensors"


@dataclass
class Example:
    text: str
    target: Any  # classification: label index; multilabel: list of label indexes; spans: [(start, end, label index)]


@dataclass
class TrainConfig:
    task_type: str
    labels: list[str]
    base_path: str | None = None  # a Hugging Face model directory; None: the packaged MiniLM
    warm_start_path: str | None = None  # a previous fine-tuned artifact with the same labels
    max_epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_length: int = 128
    patience: int = 1  # epochs without a better validation loss before stopping
    seed: int = 0
    time_limit_s: float = 600.0
    cpu_threads: int | None = None
    # the word-embedding matrix (half of MiniLM's parameters) stays as pre-trained: its dense gradient
    # and AdamW state cost more than the six layers' on short texts (bench/README.md "active_learning")
    freeze_word_embeddings: bool = True


@dataclass
class TrainResult:
    epochs: int
    steps: int
    best_epoch: int
    stopped: str  # "converged" | "max_epochs" | "time_limit"
    temperature: float
    sha256: str
    history: list[dict[str, float]] = field(default_factory=list)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _encode(tokenizer, config: TrainConfig, batch: Sequence[Example]) -> dict[str, torch.Tensor]:
    enc = tokenizer(
        [e.text for e in batch],
        padding=True,
        truncation=True,
        max_length=config.max_length,
        return_tensors="pt",
        return_offsets_mapping=config.task_type == "spans",
        return_special_tokens_mask=config.task_type == "spans",
    )
    k = len(config.labels)
    if config.task_type == "classification":
        enc["labels"] = torch.tensor([int(e.target) for e in batch])
    elif config.task_type == "multilabel":
        y = torch.zeros((len(batch), k))
        for row, e in enumerate(batch):
            for j in e.target:
                y[row, int(j)] = 1.0
        enc["labels"] = y
    else:
        offsets = enc.pop("offset_mapping")
        special = enc.pop("special_tokens_mask")
        y = torch.full(offsets.shape[:2], -100, dtype=torch.long)
        for row, e in enumerate(batch):
            for t in range(offsets.shape[1]):
                if special[row, t] or enc["attention_mask"][row, t] == 0:
                    continue
                start, end = int(offsets[row, t, 0]), int(offsets[row, t, 1])
                tag = 0
                for s, e_, j in e.target:
                    if start >= s and end <= e_ and end > start:
                        tag = 1 + 2 * int(j) + (0 if start == s or not _inside_previous(offsets[row], t, s) else 1)
                        break
                y[row, t] = tag
        enc["labels"] = y
    return enc


def _inside_previous(offsets: torch.Tensor, t: int, span_start: int) -> bool:
    """Whether the token before t also lies in the span starting at span_start (so t is an I- tag)."""
    return t > 0 and int(offsets[t - 1, 1]) > span_start and int(offsets[t - 1, 0]) >= span_start


def _batches(examples: Sequence[Example], size: int, rng: random.Random | None) -> list[list[Example]]:
    """Length-sorted batches (dynamic padding pads each to its own longest text); shuffled batch order."""
    batches = [[examples[i] for i in batch] for batch in length_batches([e.text for e in examples], size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _load(config: TrainConfig):
    source = Path(config.warm_start_path or config.base_path or default_model_path())
    if not any(source.glob("*.safetensors")):
        raise ModelLoadError(f"{source} has no .safetensors weights (other formats are not loaded).")
    k = len(config.labels)
    kwargs: dict[str, Any] = {"local_files_only": True, "use_safetensors": True}
    if config.task_type == "spans":
        tags = bio_tags(config.labels)
        model = AutoModelForTokenClassification.from_pretrained(
            source,
            num_labels=len(tags),
            id2label=dict(enumerate(tags)),
            label2id={t: i for i, t in enumerate(tags)},
            ignore_mismatched_sizes=config.warm_start_path is None,
            **kwargs,
        )
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=k,
            id2label=dict(enumerate(config.labels)),
            label2id={n: i for i, n in enumerate(config.labels)},
            problem_type="multi_label_classification"
            if config.task_type == "multilabel"
            else "single_label_classification",
            ignore_mismatched_sizes=config.warm_start_path is None,
            **kwargs,
        )
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    return model, tokenizer


@torch.no_grad()
def _logits(
    model, tokenizer, config: TrainConfig, examples: Sequence[Example]
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], float]:
    """Validation (logits, labels) per batch and the mean loss."""
    model.eval()
    losses, out = [], []
    for batch in _batches(examples, 64, None):
        enc = _encode(tokenizer, config, batch)
        result = model(**enc)
        losses.append(float(result.loss) * len(batch))
        out.append((result.logits, enc["labels"]))
    return out, sum(losses) / max(len(examples), 1)


def _all_correct(logits: torch.Tensor, labels: torch.Tensor, task_type: str) -> bool:
    if task_type == "multilabel":
        return bool(((logits > 0) == (labels > 0.5)).all())
    mask = labels != -100
    return bool((logits[mask].argmax(-1) == labels[mask]).all())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, task_type: str) -> float:
    """The temperature T minimising the validation NLL of logits / T (a grid, then a golden-section refine).

    When every validation prediction is already right (common with the few labels of an early round),
    the NLL keeps falling as T -> 0: there is no minimiser, and the grid's floor would sharpen every
    probability until confident items saturate. Then T stays 1."""
    if logits.numel() == 0 or _all_correct(logits, labels, task_type):
        return 1.0

    def nll(t: float) -> float:
        z = logits / t
        if task_type == "multilabel":
            return float(torch.nn.functional.binary_cross_entropy_with_logits(z, labels.float()))
        mask = labels != -100
        return float(torch.nn.functional.cross_entropy(z[mask], labels[mask]))

    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 60))
    best = min(grid, key=nll)
    lo, hi = best / 1.2, best * 1.2
    g = (math.sqrt(5) - 1) / 2
    for _ in range(30):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float((lo + hi) / 2)


def train(
    config: TrainConfig,
    train_examples: Sequence[Example],
    validation: Sequence[Example],
    out_dir: Path,
    *,
    heartbeat: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Fine-tune, early-stop on validation loss, calibrate, save. `heartbeat(step, total_steps)` is called
    after every optimisation step (the caller records liveness and progress)."""
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    _seed_everything(config.seed)
    started = time.monotonic()
    model, tokenizer = _load(config)
    if config.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.01)
    rng = random.Random(config.seed)  # noqa: S311 - shuffling, not security
    steps_per_epoch = math.ceil(len(train_examples) / config.batch_size)
    total = steps_per_epoch * config.max_epochs
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    best_loss, best_state, best_epoch, bad_epochs = float("inf"), None, 0, 0
    history: list[dict[str, float]] = []
    step, stopped, epoch = 0, "max_epochs", 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        for batch in _batches(train_examples, config.batch_size, rng):
            loss = model(**_encode(tokenizer, config, batch)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if heartbeat:
                heartbeat(step, total)
            if time.monotonic() - started > config.time_limit_s:
                stopped = "time_limit"
                break
        _, val_loss = _logits(model, tokenizer, config, validation) if validation else ([], 0.0)
        history.append({"epoch": epoch, "validation_loss": round(val_loss, 6), "step": step})
        if val_loss < best_loss - 1e-6 or best_state is None:
            best_loss, best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if stopped == "time_limit":
            break
        if bad_epochs > config.patience:
            stopped = "converged"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    temperature = 1.0
    if validation:
        batches, _ = _logits(model, tokenizer, config, validation)
        if config.task_type == "spans":
            logits = torch.cat([z.reshape(-1, z.shape[-1]) for z, _ in batches])
            labels = torch.cat([y.reshape(-1) for _, y in batches])
        else:
            logits = torch.cat([z for z, _ in batches])
            labels = torch.cat([y for _, y in batches])
        temperature = fit_temperature(logits, labels, config.task_type)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    meta = {"task_type": config.task_type, "labels": config.labels, "temperature": temperature, "seed": config.seed}
    (out_dir / ARTIFACT_META).write_text(json.dumps(meta, indent=2))
    return TrainResult(
        epochs=epoch,
        steps=step,
        best_epoch=best_epoch,
        stopped=stopped,
        temperature=temperature,
        sha256=sha256_file(out_dir / WEIGHTS),
        history=history,
    )
