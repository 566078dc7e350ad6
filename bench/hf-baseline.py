#!/usr/bin/env python3
"""HF transformers + PEFT baseline for lorafit's benchmarks: the same cases, inputs and JSON lines
(with "impl": "hf") as bench/forward.ts, bench/train-step.ts and bench/loss.ts.

  /root/.cache/lorafit/venv/bin/python bench/hf-baseline.py forward    --model DIR [--dtypes float32,bfloat16] [--seq 512] [--batch 1] [--runs 5]
  ... hf-baseline.py train_step --model DIR [--dtypes bfloat16,float32] [--batches 1,4] [--runs 3]
  ... hf-baseline.py loss       --model DIR_1_LAYER [--dtypes bfloat16,float32] [--tokens 2048] [--runs 5]
  ... hf-baseline.py train --child CASE_JSON   (full optimizer steps; bench/train.ts passes the case)

Each case runs in its own child process (peak RSS per case). torch.set_num_threads(--threads, 2).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

# quiet: no progress bars, no optional-kernel notices on stderr
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

KNOBS = ["GLIBC_TUNABLES", "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "LD_PRELOAD", "MALLOC_ARENA_MAX"]


def status_mb(field):
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return round(int(m.group(1)) / 1024) if m else None


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def token_ids(batch, seq, vocab):
    # same formula as bench/common.ts tokenIds()
    return [[((b * seq + t) * 7919 + 17) % vocab for t in range(seq)] for b in range(batch)]


def time_runs(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def r1(x):
    return round(x, 1)


def common_fields(torch, threads):
    return {"threads": torch.get_num_threads(), "torch": torch.__version__.split("+")[0],
            "env": {k: os.environ[k] for k in KNOBS if os.environ.get(k)}}


def load(case):
    import torch
    torch.set_num_threads(case["threads"])
    from transformers import AutoModelForCausalLM
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[case["dtype"]]
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(case["model"], dtype=dtype, attn_implementation="sdpa")
    return torch, model, (time.perf_counter() - t0) * 1000


def add_lora(model, rank=16, alpha=32):
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def run_forward(case):
    torch, model, load_ms = load(case)
    model.eval()
    load_peak = status_mb("VmHWM")
    reset = reset_peak_rss()
    vocab = model.config.vocab_size
    ids = torch.tensor(token_ids(case["batch"], case["seq"], vocab), dtype=torch.long)
    kw = {"logits_to_keep": 1} if case["last_only"] else {}

    def fwd():
        with torch.inference_mode():
            return model(input_ids=ids, use_cache=False, **kw).logits

    times = time_runs(fwd, case["runs"], case["warmup"])
    ms = statistics.median(times)
    return {"bench": "forward", "impl": "hf", "dtype": case["dtype"], "seq": case["seq"], "batch": case["batch"],
            "layers": model.config.num_hidden_layers, "last_only": case["last_only"],
            "tokens_per_s": r1(case["batch"] * case["seq"] / (ms / 1000)), "ms_per_run": r1(ms),
            "runs_ms": [r1(t) for t in times], "peak_rss_mb": status_mb("VmHWM"), "load_peak_rss_mb": load_peak,
            "run_peak_is_after_load": reset, "load_ms": r1(load_ms), **common_fields(torch, case["threads"])}


def run_generate(case):
    """Greedy decoding with HF's KV cache; decode speed excludes the first token (prefill)."""
    torch, model, load_ms = load(case)
    model.eval()
    vocab = model.config.vocab_size
    ids = torch.tensor(token_ids(1, case["prompt"], vocab), dtype=torch.long)
    prefill, decode = [], []
    for r in range(case["runs"] + 1):
        with torch.inference_mode():
            t0 = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, min_new_tokens=1, do_sample=False)
            t1 = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=case["new"], min_new_tokens=case["new"], do_sample=False)
            t2 = time.perf_counter()
        if r == 0:
            continue
        prefill.append((t1 - t0) * 1000)
        decode.append((case["new"] - 1) / ((t2 - t1) - (t1 - t0)))
    return {"bench": "generate", "impl": "hf", "dtype": case["dtype"], "prompt": case["prompt"], "new_tokens": case["new"],
            "layers": model.config.num_hidden_layers, "decode_tokens_per_s": r1(statistics.median(decode)),
            "prefill_ms": r1(statistics.median(prefill)), "runs_decode_tokens_per_s": [r1(d) for d in decode],
            "peak_rss_mb": status_mb("VmHWM"), **common_fields(torch, case["threads"])}


def run_train_step(case):
    torch, model, _ = load(case)
    load_peak = status_mb("VmHWM")
    model = add_lora(model, case["rank"], case["alpha"])
    model.train()
    reset = reset_peak_rss()
    vocab = model.config.vocab_size
    ids = torch.tensor(token_ids(case["batch"], case["seq"], vocab), dtype=torch.long)
    last = {}

    def step():
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=ids, use_cache=False)
        out.loss.backward()
        last["loss"] = out.loss.item()

    times = time_runs(step, case["runs"], case["warmup"])
    ms = statistics.median(times)
    n_lora = sum(1 for n, _ in model.named_modules() if n.endswith(".lora_A"))
    return {"bench": "train_step", "impl": "hf", "dtype": case["dtype"], "seq": case["seq"], "batch": case["batch"],
            "layers": model.config.num_hidden_layers, "rank": case["rank"], "lora_modules": n_lora,
            "tokens_per_s": r1(case["batch"] * case["seq"] / (ms / 1000)), "ms_per_run": r1(ms),
            "runs_ms": [r1(t) for t in times], "loss": round(last["loss"], 4), "peak_rss_mb": status_mb("VmHWM"),
            "load_peak_rss_mb": load_peak, "run_peak_is_after_load": reset, **common_fields(torch, case["threads"])}


def matmul_peaks(torch, n=2048, reps=5):
    """GFLOP/s of the best of `reps` n^3 matmuls per dtype, in this process (after one untimed run)."""
    out = {}
    for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
        c = torch.empty(n, n, dtype=dt)
        best = None
        for i in range(reps + 1):
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            t = time.perf_counter() - t0
            if i and (best is None or t < best):
                best = t
        out[name] = r1(2 * n ** 3 / best / 1e9)
    return out


def run_train(case):
    """Full optimizer steps as transformers.Trainer takes them: zero_grad, forward with labels,
    backward, clip_grad_norm_(1.0), AdamW(lr 2e-4) over the LoRA weights. Same ids and LoRA as
    bench/train.ts; gradient checkpointing via gradient_checkpointing_enable (use_reentrant False);
    NF4 via BitsAndBytesConfig(load_in_4bit, nf4, double quant, compute dtype = dtype)."""
    import torch
    torch.set_num_threads(case["threads"])
    peaks = matmul_peaks(torch)
    from transformers import AutoModelForCausalLM
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[case["dtype"]]
    kw = {}
    if case.get("quant") == "nf4":
        from transformers import BitsAndBytesConfig
        kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                       bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(case["model"], dtype=dtype, attn_implementation="sdpa", **kw)
    if case.get("ckpt"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    load_peak = status_mb("VmHWM")
    model = add_lora(model, case["rank"], case["alpha"])
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    reset = reset_peak_rss()
    ids = torch.tensor(token_ids(case["batch"], case["seq"], model.config.vocab_size), dtype=torch.long)
    last = {}

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=ids, use_cache=False)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        last["loss"] = out.loss.item()

    times = time_runs(step, case["runs"], case["warmup"])
    ms = statistics.median(times)
    return {"bench": "train", "impl": "hf", "dtype": case["dtype"], "quant": case.get("quant") or "none",
            "seq": case["seq"], "batch": case["batch"], "ckpt": bool(case.get("ckpt")),
            "layers": model.config.num_hidden_layers, "rank": case["rank"],
            "tokens_per_s": r1(case["batch"] * case["seq"] / (ms / 1000)), "s_per_step": round(ms / 1000, 3),
            "runs_s": [round(t / 1000, 3) for t in times], "loss": round(last["loss"], 4),
            "peak_rss_mb": status_mb("VmHWM"), "load_peak_rss_mb": load_peak, "run_peak_is_after_load": reset,
            "matmul_peak_gflops": peaks, **common_fields(torch, case["threads"])}


def run_loss(case):
    torch, model, _ = load(case)
    import torch.nn.functional as F
    reset = reset_peak_rss()
    vocab = model.config.vocab_size
    ids = torch.tensor(token_ids(1, case["tokens"] + 1, vocab), dtype=torch.long)
    runs, warm = case["runs"], case["warmup"]
    model.eval()

    def fwd_last():
        with torch.no_grad():
            model(input_ids=ids, use_cache=False, logits_to_keep=1)

    def evaluate():
        with torch.no_grad():
            model(input_ids=ids, labels=ids, use_cache=False)

    fwd = time_runs(fwd_last, runs, warm)
    ev = time_runs(evaluate, runs, warm)
    eval_peak = status_mb("VmHWM")
    # The loss alone, as transformers' ForCausalLMLoss does it: upcast the logits, then CE.
    w = model.get_output_embeddings().weight.detach()
    h = torch.randn(case["tokens"], w.shape[1], dtype=w.dtype) * 0.5
    tgt = torch.tensor(token_ids(1, case["tokens"], vocab)[0], dtype=torch.long)
    with torch.no_grad():
        logits = F.linear(h, w)
    lm_head = time_runs(lambda: F.linear(h, w), runs, warm)

    def upcast_ce():
        with torch.no_grad():
            F.cross_entropy(logits.float(), tgt, reduction="sum")

    def upcast_ce_grad():
        z = logits.detach().requires_grad_(True)
        F.cross_entropy(z.float(), tgt, reduction="sum").backward()

    ce = time_runs(upcast_ce, runs, warm)
    ce_grad = time_runs(upcast_ce_grad, runs, warm)
    del logits
    peft = add_lora(model)
    peft.train()

    def train():
        peft.zero_grad(set_to_none=True)
        peft(input_ids=ids, labels=ids, use_cache=False).loss.backward()

    tr = time_runs(train, runs, warm)
    f, e, t = (statistics.median(x) for x in (fwd, ev, tr))
    return {"bench": "loss", "impl": "hf", "dtype": case["dtype"], "tokens": case["tokens"], "vocab": vocab,
            "layers": model.config.num_hidden_layers, "loss_ms": r1(e - f), "loss_train_ms": r1(t - 2 * f),
            "forward_last_ms": r1(f), "eval_ms": r1(e), "train_ms": r1(t),
            "lm_head_ms": r1(statistics.median(lm_head)), "upcast_ce_ms": r1(statistics.median(ce)),
            "upcast_ce_grad_ms": r1(statistics.median(ce_grad)),
            "runs_ms": {"forward_last": [r1(x) for x in fwd], "eval": [r1(x) for x in ev], "train": [r1(x) for x in tr]},
            "eval_peak_rss_mb": eval_peak, "peak_rss_mb": status_mb("VmHWM"), "run_peak_is_after_load": reset,
            **common_fields(torch, case["threads"])}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bench", choices=["forward", "train_step", "loss", "generate", "train"])
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--model", required=False)
    p.add_argument("--dtypes")
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--batches", default="1,4")
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32)
    p.add_argument("--runs", type=int)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--last-only", action="store_true")
    p.add_argument("--child")
    a = p.parse_args()
    if a.child:
        case = json.loads(a.child)
        fn = {"forward": run_forward, "train_step": run_train_step, "loss": run_loss, "generate": run_generate,
              "train": run_train}[a.bench]
        print(json.dumps(fn(case)), flush=True)
        return
    if not a.model:
        p.error("--model is required")
    base = {"model": os.path.abspath(a.model), "threads": a.threads, "warmup": a.warmup}
    cases = []
    if a.bench == "forward":
        for d in (a.dtypes or "float32,bfloat16").split(","):
            cases.append({**base, "dtype": d, "seq": a.seq, "batch": a.batch, "runs": a.runs or 5, "last_only": a.last_only})
    elif a.bench == "train_step":
        for d in (a.dtypes or "bfloat16,float32").split(","):
            for b in a.batches.split(","):
                cases.append({**base, "dtype": d, "seq": a.seq, "batch": int(b), "runs": a.runs or 3,
                              "rank": a.rank, "alpha": a.alpha})
    elif a.bench == "generate":
        for d in (a.dtypes or "bfloat16,float32").split(","):
            cases.append({**base, "dtype": d, "prompt": a.prompt, "new": a.new, "runs": a.runs or 3})
    else:
        for d in (a.dtypes or "bfloat16,float32").split(","):
            cases.append({**base, "dtype": d, "tokens": a.tokens, "runs": a.runs or 5})
    for case in cases:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), a.bench, "--child", json.dumps(case)],
                           stdout=subprocess.PIPE, text=True)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        for l in r.stdout.splitlines():
            if l and not l.startswith("{"):
                print(l, file=sys.stderr)
        if r.returncode != 0:
            lines.append(json.dumps({"bench": a.bench, "impl": "hf", **case, "error": f"child exited with {r.returncode}"}))
        for l in lines:
            print(l, flush=True)


if __name__ == "__main__":
    main()
