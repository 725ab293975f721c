"""Encoder throughput for pre-labeling: texts/s by runtime and batch size. Prints one JSON line.

    .venv/bin/python bench/prelabel.py                       # CPU: torch fp32 and dynamic int8, batches 8/32/64
    python3 bench/prelabel.py --device cuda --model DIR --batches 256,512,1024 --pad-to 128 --texts 65536

Texts are ~40 words each, built from the demo SMS corpus shipped in annotation/demo (so the script
needs nothing outside the repository). CPU runs use 2 threads (the CI machine's size). On CUDA the
encoder runs in bf16; each batch is padded to --pad-to tokens, and the figures include the fraction of
the GPU's bf16 peak that the encoder's matrix work reaches (FLOPs counted from the model config).
Needs torch and transformers only (no Django), so it runs on a machine that has just those.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelsvc.runtime.hf import Encoder, EncoderConfig  # noqa: E402

H200_BF16_DENSE_TFLOPS = 989.4  # NVIDIA's datasheet figure for H200 SXM, dense (no sparsity)


def make_texts(n: int, words: int = 40, seed: int = 0) -> list[str]:
    vocab: list[str] = []
    with open(ROOT / "annotation" / "demo" / "sms_spam_demo.jsonl", encoding="utf-8") as f:
        for line in f:
            vocab.extend(json.loads(line)["text"].split())
    rng = random.Random(seed)
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def flops_per_text(enc: Encoder, tokens: int) -> float:
    """Forward-pass FLOPs of a BERT-style encoder for one text of `tokens` tokens (matmuls only)."""
    cfg = enc.model.config
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    per_token_layer = 2 * (4 * h * h + 2 * h * inter) + 2 * 2 * tokens * h  # projections, FFN, attention
    return float(per_token_layer * layers * tokens)


def time_run(enc: Encoder, texts: list[str], batch: int, pad_to: int | None, repeat: int) -> float:
    import torch

    enc.embed(texts[: batch * 2], batch_size=batch, pad_to=pad_to)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        if enc.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        enc.embed(texts, batch_size=batch, pad_to=pad_to)
        if enc.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def model_only(enc: Encoder, batch: int, tokens: int, iters: int) -> float:
    """texts/s of the forward pass alone on pre-tokenised input (no tokeniser, no copies back)."""
    import torch

    ids = torch.randint(1000, 20000, (batch, tokens), device=enc.device)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        for _ in range(3):
            enc.model(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            enc.model(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0)


def matmul_tflops() -> float:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * 10 / (time.perf_counter() - t0) / 1e12


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None, help="a local Hugging Face model directory (default: packaged MiniLM)")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes")
    ap.add_argument("--texts", type=int, default=None)
    ap.add_argument("--pad-to", type=int, default=None, help="pad every batch to this many tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    gpu = args.device == "cuda"
    batches = [int(b) for b in (args.batches or ("256,512,1024" if gpu else "8,32,64")).split(",")]
    texts = make_texts(args.texts or (65536 if gpu else 1024))
    result: dict = {
        "bench": "prelabel",
        "device": args.device,
        "texts": len(texts),
        "words_per_text": 40,
        "python": platform.python_version(),
        "runs": [],
    }
    runtimes = [("torch-bf16", False)] if gpu else [("torch-fp32", False), ("torch-int8-dynamic", True)]
    for name, int8 in runtimes:
        enc = Encoder(
            EncoderConfig(model_path=args.model, device=args.device, cpu_threads=args.threads, quantize_int8=int8)
        )
        import torch

        result["torch"] = torch.__version__
        for batch in batches:
            tps = time_run(enc, texts, batch, args.pad_to, args.repeat)
            run = {
                "runtime": name,
                "batch": batch,
                "pad_to": args.pad_to or "longest in batch",
                "texts_per_s": round(tps, 1),
            }
            if gpu:
                tokens = args.pad_to or 128
                fl = flops_per_text(enc, tokens)
                fwd = model_only(enc, batch, tokens, iters=max(5, 20000 // batch))
                run.update(
                    {
                        "model_only_texts_per_s": round(fwd, 1),
                        "gflop_per_text": round(fl / 1e9, 3),
                        "end_to_end_tflops": round(tps * fl / 1e12, 1),
                        "model_only_tflops": round(fwd * fl / 1e12, 1),
                        "fraction_of_bf16_peak_end_to_end": round(tps * fl / 1e12 / H200_BF16_DENSE_TFLOPS, 4),
                        "fraction_of_bf16_peak_model_only": round(fwd * fl / 1e12 / H200_BF16_DENSE_TFLOPS, 4),
                    }
                )
            result["runs"].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
        if gpu:
            result["gpu"] = torch.cuda.get_device_name(0)
            result["matmul_8192_bf16_tflops"] = round(matmul_tflops(), 1)
            result["bf16_peak_tflops_datasheet"] = H200_BF16_DENSE_TFLOPS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
