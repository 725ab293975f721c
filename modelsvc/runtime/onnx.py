"""The same sentence encoder on ONNX Runtime (CPU), int8 or fp32, with no torch at inference.

`OnnxEncoder(EncoderConfig)` has the contract of `modelsvc.runtime.hf.Encoder` (the
`SentenceEncoder` protocol of modelsvc.runtime.config): `embed(texts, *,
batch_size=32, pad_to=None)` returns L2-normalised mean-pooled float32 embeddings in the order of
`texts`, and it has `hidden_size` and `device` (always CPU). `config.quantize_int8` picks the int8
graph (dynamic, per-channel MatMul weights) or the fp32 one.

The ONNX graphs are exported from the model directory once (`modelsvc.runtime.export`, which needs
torch) and cached in `<cache_dir>/<fingerprint of the model's safetensors>/` with a `manifest.json`
holding each file's sha256. On load the file is read once, its sha256 checked against the manifest,
and the checked bytes are what ONNX Runtime loads. A missing or mismatching file is exported again
(under a file lock, so concurrent workers export once); when re-exporting is not allowed, or the export
fails (torch not installed, say), that is an `OnnxCacheError`.

Imports onnxruntime, numpy and tokenizers only: no torch and no transformers. The export, which needs torch,
runs in a child process (`python -m modelsvc.runtime.export`), so a worker on the ONNX runtime never imports
torch, and the memory torch takes is given back when the child exits; a task's time limit that interrupts
the wait kills the child with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from modelsvc.contracts import ModelUnavailable
from modelsvc.runtime import export as exp
from modelsvc.runtime.config import EncoderConfig, length_batches, model_directory

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class OnnxCacheError(ModelUnavailable):
    """The cached ONNX export is missing or does not match its sha256, and cannot be re-exported."""


@dataclass(frozen=True)
class CpuDevice:
    """What `Encoder.device` gives for torch (`.type`), without torch."""

    type: str = "cpu"

    def __str__(self) -> str:
        return self.type


def default_cache_dir() -> Path:
    """MODEL_DIR/onnx, resolved the way config/settings.py resolves MODEL_DIR (without Django)."""
    if os.environ.get("MODEL_DIR"):
        return Path(os.environ["MODEL_DIR"]) / "onnx"
    var = os.environ.get("TANDEM_VAR_DIR") or str(Path(__file__).resolve().parents[2] / "var")
    return Path(var) / "models" / "onnx"


def _read_checked(path: Path, expected: str | None) -> bytes | None:
    """The file's bytes when its sha256 is `expected`; None when missing or different."""
    if expected is None or not path.is_file():
        return None
    data = path.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == expected else None


def _manifest(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def load_onnx_model(
    model_path: Path, cache_dir: Path, *, int8: bool, allow_export: bool = True
) -> tuple[bytes, dict[str, Any]]:
    """The checked bytes of the cached ONNX export (int8 or fp32) and its manifest, exporting when needed."""
    name = exp.INT8_FILE if int8 else exp.FP32_FILE
    directory = cache_dir / exp.model_fingerprint(model_path)
    manifest = _manifest(directory)
    data = _read_checked(directory / name, manifest.get("files", {}).get(name))
    if data is not None:
        return data, manifest
    if not allow_export:
        raise OnnxCacheError(
            f"The ONNX export {directory / name} is missing or does not match the sha256 in its manifest "
            "(corrupt or replaced), and re-exporting is not allowed here."
        )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with open(cache_dir / f"{directory.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be exporting the same model
            manifest = _manifest(directory)
            data = _read_checked(directory / name, manifest.get("files", {}).get(name))
            if data is not None:
                return data, manifest
            if (directory / name).exists():
                logger.warning("ONNX export %s does not match its manifest's sha256: exporting again", directory / name)
            tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=cache_dir))
            try:
                manifest = _export_in_child(model_path, tmp)
                manifest["model_path"] = str(model_path)
                directory.mkdir(exist_ok=True)
                (directory / MANIFEST).unlink(missing_ok=True)  # no manifest while its files are replaced
                for file in manifest["files"]:
                    os.replace(tmp / file, directory / file)
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
                os.replace(tmp / MANIFEST, directory / MANIFEST)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise OnnxCacheError(f"Could not write the ONNX export under {cache_dir}: {exc}") from exc
    data = _read_checked(directory / name, manifest["files"][name])
    if data is None:  # pragma: no cover - only if the directory is changed under us
        raise OnnxCacheError(f"The fresh ONNX export {directory / name} does not match its sha256.")
    return data, manifest


def _export_in_child(model_path: Path, out_dir: Path) -> dict[str, Any]:
    """exp.export_onnx in a child process (it needs torch; this process never imports it): its manifest."""
    done = subprocess.run(  # noqa: S603 - our own module, argv without a shell
        [sys.executable, "-m", "modelsvc.runtime.export", str(model_path), str(out_dir)],
        cwd=Path(__file__).resolve().parents[2],  # the project root, so `-m modelsvc...` imports from any cwd
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise OnnxCacheError(f"Exporting {model_path} to ONNX failed: {last[0][:500]}")
    return json.loads((out_dir / exp.EXPORT_RESULT).read_text())


class OnnxEncoder:
    """Sentence embeddings from the ONNX export of a Transformer encoder; one per worker process."""

    def __init__(self, config: EncoderConfig, *, allow_export: bool = True) -> None:
        self.config = config
        path = model_directory(config.model_path)
        if not (path / "tokenizer.json").is_file():
            raise ModelUnavailable(f"{path} has no tokenizer.json (the ONNX runtime needs a fast tokenizer).")
        if config.device not in (None, "cpu"):
            raise ValueError(f"OnnxEncoder runs on the CPU only, not on {config.device!r}")
        self.path = path
        self.device = CpuDevice()
        self.int8 = bool(config.quantize_int8)
        cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        data, self.manifest = load_onnx_model(path, cache_dir, int8=self.int8, allow_export=allow_export)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = config.cpu_threads or 0  # 0: one per physical core
        options.inter_op_num_threads = 1
        # no busy-waiting between runs: the worker shares its cores with the web server and the database,
        # and spinning threads cost them CPU without raising throughput (bench/README.md "prelabel")
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.hidden_size = int(self.manifest["hidden_size"])
        self._tokenizer_json = (path / "tokenizer.json").read_text(encoding="utf-8")
        self.pad_token = _pad_token(path)
        pad_id = Tokenizer.from_str(self._tokenizer_json).token_to_id(self.pad_token)
        self.pad_id = 0 if pad_id is None else pad_id
        self._tokenizers: dict[int | None, Tokenizer] = {}

    def _tokenizer_for(self, pad_to: int | None) -> Tokenizer:
        """A tokenizer that truncates to `pad_to` (or `max_length`) tokens and pads to `pad_to` (or
        to the batch's longest text), the way `hf.Encoder` configures the same tokenizer.json."""
        if pad_to not in self._tokenizers:
            tokenizer = Tokenizer.from_str(self._tokenizer_json)
            tokenizer.enable_truncation(max_length=pad_to or self.config.max_length)
            tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token, length=pad_to)
            self._tokenizers[pad_to] = tokenizer
        return self._tokenizers[pad_to]

    @staticmethod
    def _tokenize(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, pad_to: int | None = None) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, float32, in the order of `texts`.

        Texts are sorted by length and batched; the next batches are tokenised in a background thread
        (the Rust tokenizer releases the GIL) while ONNX Runtime runs this one.
        """
        batches = length_batches(texts, batch_size)
        if not batches:
            return np.zeros((0, self.hidden_size), dtype=np.float32)
        tokenizer = self._tokenizer_for(pad_to)
        parts = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = [pool.submit(self._tokenize, tokenizer, [texts[i] for i in b]) for b in batches[:2]]
            for n in range(len(batches)):
                ids, mask = pending[n].result()
                if n + 2 < len(batches):
                    pending.append(pool.submit(self._tokenize, tokenizer, [texts[i] for i in batches[n + 2]]))
                parts.append(self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0])
        order = np.fromiter((i for b in batches for i in b), dtype=np.int64, count=len(texts))
        out = np.empty((len(texts), self.hidden_size), dtype=np.float32)
        out[order] = np.concatenate(parts)
        return out


def _pad_token(path: Path) -> str:
    """The model's padding token, from special_tokens_map.json or tokenizer_config.json; "[PAD]" if neither says."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        try:
            pad = json.loads((path / name).read_text()).get("pad_token")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(pad, dict):
            pad = pad.get("content")
        if isinstance(pad, str) and pad:
            return pad
    return "[PAD]"
