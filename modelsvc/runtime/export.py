"""Export a Hugging Face encoder to ONNX (fp32) and quantise it to dynamic int8, once per model.

The exported graph takes `input_ids` and `attention_mask` (int64, dynamic batch and sequence axes)
and returns `embedding`: the L2-normalised mean-pooled last hidden state, the same vector that
`modelsvc.runtime.hf.Encoder.embed` computes, so ONNX Runtime inference needs no torch and copies back
only (batch, hidden) floats.

Quantisation recipe (chosen by measurement, figures in bench/README.md "prelabel"): dynamic int8 on the
MatMul weights only, per output channel, 7-bit range. Per-tensor int8 drifted from fp32 and lost zero-shot
accuracy; per-channel stays close to fp32 on both. `reduce_range` avoids the u8-by-s8 saturation of CPUs
without VNNI (AVX2 only) at no measurable cost. The embedding table (Gather) stays fp32.

torch and transformers are imported inside `export_onnx` only: importing this module is cheap.
`modelsvc.runtime.onnx` runs the export as `python -m modelsvc.runtime.export <model dir> <out dir>`, a child
process, only when it has to export; the child writes the manifest entries to `<out dir>/export.json`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

EXPORT_VERSION = 1  # bump when the graph or the quantisation recipe changes: it is part of the cache key
OPSET = 18
FP32_FILE = "model.fp32.onnx"
INT8_FILE = "model.int8.onnx"
EXPORT_RESULT = "export.json"  # what the child process (main) hands back: export_onnx's manifest entries
QUANTIZATION = {"weight_type": "QInt8", "per_channel": True, "reduce_range": True, "op_types": ["MatMul"]}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(model_path: Path) -> str:
    """sha256 over the model directory's safetensors, config.json and tokenizer.json (and the export
    version): the cache key of its ONNX exports. 16 hex digits."""
    digest = hashlib.sha256(f"tandem-onnx-export-v{EXPORT_VERSION}\n".encode())
    names = [*sorted(p.name for p in model_path.glob("*.safetensors")), "config.json", "tokenizer.json"]
    for name in names:
        path = model_path / name
        if not path.is_file():
            continue
        digest.update(f"{name}\n".encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:16]


def export_onnx(model_path: Path, out_dir: Path) -> dict[str, Any]:
    """Write `model.fp32.onnx` and `model.int8.onnx` for the encoder at `model_path` into `out_dir`.

    Returns the manifest entries: each file's sha256 and what produced it. Needs torch and
    transformers (the export runs the model once under the TorchScript tracer, `dynamo=False`).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    # eager attention: a plain MatMul/Softmax graph that every ONNX Runtime version runs and fuses
    model = AutoModel.from_pretrained(
        model_path, local_files_only=True, use_safetensors=True, dtype=torch.float32, attn_implementation="eager"
    ).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            return torch.nn.functional.normalize(pooled, dim=-1)

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out_dir / FP32_FILE, out_dir / INT8_FILE
    # a sample with padding, so the traced graph keeps the mask path
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(model),
            (ids, mask),
            str(fp32),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
        )
    quantize_dynamic(
        str(fp32),
        str(int8),
        weight_type=QuantType.QInt8,
        per_channel=QUANTIZATION["per_channel"],
        reduce_range=QUANTIZATION["reduce_range"],
        op_types_to_quantize=QUANTIZATION["op_types"],
    )
    return {
        "export_version": EXPORT_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "quantization": QUANTIZATION,
        "hidden_size": int(model.config.hidden_size),
        "files": {FP32_FILE: sha256_file(fp32), INT8_FILE: sha256_file(int8)},
    }


def main(argv: list[str]) -> int:
    """`python -m modelsvc.runtime.export <model dir> <out dir>`: export, then write the manifest entries to
    <out dir>/export.json. Exit status 1 with one line on stderr when it cannot (torch missing, say)."""
    import json
    import sys

    model_path, out_dir = Path(argv[0]), Path(argv[1])
    try:
        manifest = export_onnx(model_path, out_dir)
    except ImportError as exc:
        print(f"torch is not installed to export an ONNX model ({exc})", file=sys.stderr)
        return 1
    (out_dir / EXPORT_RESULT).write_text(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
