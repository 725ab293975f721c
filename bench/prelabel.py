"""Encoder throughput and accuracy for pre-labeling, by runtime and batch size. Prints one JSON line.

    .venv/bin/python bench/prelabel.py        # CPU: 4 runtimes x batches 8/32/64/128 + accuracy, 3-4 min
    .venv/bin/python bench/prelabel.py --runtimes onnx-int8 --batches 32 --accuracy-texts 0   # one figure
    python3 bench/prelabel.py --device cuda --model DIR --batches 256,512,1024 --pad-to 128 --texts 65536

Speed: texts of ~40 words each, built from the demo SMS corpus shipped in annotation/demo. CPU runs
use 2 threads (the CI machine's size) and the runtimes of modelsvc.runtime.encoders: torch fp32,
torch dynamic int8, ONNX Runtime dynamic int8 and ONNX Runtime fp32. Each figure is the best of
--repeat runs (wall clock), with the process CPU time per text beside it (steadier on a shared
machine). On CUDA the encoder runs in bf16; each batch is padded to --pad-to tokens, and the figures
include the fraction of the GPU's bf16 peak that the encoder's matrix work reaches (FLOPs counted
from the model config).

Accuracy (CPU): zero-shot classification (modelsvc.zeroshot, label names embedded by the same
runtime) of --accuracy-texts texts of a labeled set from ../shared/datasets (default ag_news test, a
fixed random sample), per runtime, with the mean and minimum cosine of each runtime's embeddings to
torch fp32's and the share of texts whose zero-shot label agrees with torch fp32's. --accuracy-texts 0
skips it (the default on CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelsvc.runtime.config import EncoderConfig  # noqa: E402
from modelsvc.runtime.encoders import make_encoder  # noqa: E402
from modelsvc.runtime.hf import Encoder  # noqa: E402

CPU_RUNTIMES = "torch,torch-int8,onnx-int8,onnx"
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "ag_news" / "test.jsonl"

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


def time_run(enc, texts: list[str], batch: int, pad_to: int | None, repeat: int) -> tuple[float, float]:
    """Best texts/s of `repeat` runs (wall clock) and the process CPU milliseconds per text of that run."""
    cuda = enc.device.type == "cuda"
    if cuda:
        import torch
    enc.embed(texts[: batch * 2], batch_size=batch, pad_to=pad_to)  # warm-up
    best, cpu = float("inf"), 0.0
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        enc.embed(texts, batch_size=batch, pad_to=pad_to)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return len(texts) / best, 1000 * cpu / len(texts)


def load_labeled(path: Path, n: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    """A fixed random sample of n rows of a /work/shared/datasets split, its label ids and label names."""
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    random.Random(seed).shuffle(rows)
    rows = rows[:n]
    labels = json.loads((path.parent / "labels.json").read_text())
    return [r["text"] for r in rows], np.array([r["label_id"] for r in rows]), labels


def accuracy_run(enc, texts: list[str], y: np.ndarray, labels: list[str], ref: dict | None) -> dict:
    """Zero-shot accuracy on (texts, y), and agreement with the reference runtime's embeddings and labels."""
    from modelsvc.zeroshot import label_prompts, zero_shot_probabilities

    emb = enc.embed(texts, batch_size=64)
    label_emb = enc.embed(label_prompts([{"name": name} for name in labels]))
    pred = zero_shot_probabilities(emb, label_emb).argmax(axis=1)
    out = {"accuracy": round(float((pred == y).mean()), 4), "_emb": emb, "_pred": pred}
    if ref is not None:
        cosine = (emb * ref["_emb"]).sum(axis=1)
        out.update(
            {
                "cosine_to_torch_fp32_mean": round(float(cosine.mean()), 4),
                "cosine_to_torch_fp32_min": round(float(cosine.min()), 4),
                "same_label_as_torch_fp32": round(float((pred == ref["_pred"]).mean()), 4),
            }
        )
    return out


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


def machine() -> dict:
    info: dict = {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None, help="a local Hugging Face model directory (default: packaged MiniLM)")
    ap.add_argument("--runtimes", default=None, help=f"comma-separated, CPU only (default {CPU_RUNTIMES})")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes")
    ap.add_argument("--texts", type=int, default=None)
    ap.add_argument("--pad-to", type=int, default=None, help="pad every batch to this many tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=None, help="runs per figure, the best is kept (CPU 3, GPU 2)")
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="a labeled .jsonl from shared/datasets")
    ap.add_argument("--accuracy-texts", type=int, default=None, help="0 skips accuracy (CPU default 1000)")
    ap.add_argument("--cache-dir", default=None, help="where ONNX exports are cached (default MODEL_DIR/onnx)")
    args = ap.parse_args()
    gpu = args.device == "cuda"
    batches = [int(b) for b in (args.batches or ("256,512,1024" if gpu else "8,32,64,128")).split(",")]
    texts = make_texts(args.texts or (65536 if gpu else 256))
    repeat = args.repeat or (2 if gpu else 3)
    n_acc = args.accuracy_texts if args.accuracy_texts is not None else (0 if gpu else 1000)
    runtimes = ["torch"] if gpu else (args.runtimes or CPU_RUNTIMES).split(",")
    result: dict = {
        "bench": "prelabel",
        "device": args.device,
        "texts": len(texts),
        "words_per_text": 40,
        "threads": None if gpu else args.threads,
        "repeat": repeat,
        "python": platform.python_version(),
        "machine": machine(),
        "runs": [],
    }
    if n_acc:
        acc_texts, acc_y, acc_labels = load_labeled(args.dataset, n_acc)
        result["accuracy_set"] = {"file": str(args.dataset), "texts": len(acc_texts), "labels": acc_labels}
        result["accuracy"] = []
    ref = None
    for runtime in runtimes:
        config = EncoderConfig(
            model_path=args.model, device=args.device, cpu_threads=args.threads, cache_dir=args.cache_dir
        )
        t0 = time.perf_counter()
        enc = make_encoder(config, runtime)
        load_s = time.perf_counter() - t0
        name = "torch-bf16" if gpu else runtime
        print(json.dumps({"runtime": name, "load_s": round(load_s, 2)}), file=sys.stderr, flush=True)
        if isinstance(enc, Encoder):
            import torch

            result["torch"] = torch.__version__
        else:
            import onnxruntime

            result["onnxruntime"] = onnxruntime.__version__
        for batch in batches:
            tps, cpu_ms = time_run(enc, texts, batch, args.pad_to, repeat)
            run = {
                "runtime": name,
                "batch": batch,
                "pad_to": args.pad_to or "longest in batch",
                "texts_per_s": round(tps, 1),
                "cpu_ms_per_text": round(cpu_ms, 2),
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
        if n_acc and not (runtime == "torch" and ref is not None):
            if ref is None and runtime != "torch":
                ref = accuracy_run(make_encoder(config, "torch"), acc_texts, acc_y, acc_labels, None)
                result["accuracy"].append({"runtime": "torch", **{k: v for k, v in ref.items() if k[0] != "_"}})
            acc = accuracy_run(enc, acc_texts, acc_y, acc_labels, ref)
            if ref is None:
                ref = acc
            entry = {"runtime": name, "load_s": round(load_s, 2), **{k: v for k, v in acc.items() if k[0] != "_"}}
            result["accuracy"].append(entry)
            print(json.dumps(entry), file=sys.stderr, flush=True)
        if gpu:
            result["gpu"] = torch.cuda.get_device_name(0)
            result["matmul_8192_bf16_tflops"] = round(matmul_tflops(), 1)
            result["bf16_peak_tflops_datasheet"] = H200_BF16_DENSE_TFLOPS
        del enc
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
