#!/usr/bin/env python3
"""The real workload on the Python stack, and the one evaluator both adapters are scored by.

  python bench/real_workload_hf.py train --gguf FILE --train train.txt --out DIR [--dtype float32|bfloat16]
         [--steps 60] [--batch 4] [--max-len 256] [--rank 8] [--alpha 16] [--lr 2e-4] [--seed 42] [--threads 2]
  python bench/real_workload_hf.py eval --gguf FILE --eval eval.txt --adapter NAME=DIR [--adapter ...] [--threads 2]

train: transformers.Trainer + peft.get_peft_model (LoRA r on q/k/v/o/gate/up/down, dropout 0) over
  AutoModelForCausalLM.from_pretrained(dir, gguf_file=...) (dequantized), one record per line of
  train.txt tokenized as lorafit does for text (the tokenizer's special tokens + eos), cut at
  max-len, micro-batches padded to their longest row (labels -100 on padding), AdamW, linear
  schedule without warm-up, clipping 1.0. Prints one JSON line: train_s (trainer.train() wall time),
  input tokens (not padding) and padded tokens, tokens_per_s, s_per_step, peak RSS, final loss;
  saves the adapter to DIR/adapter.
eval: held-out NLL per trained token (labels = ids, HF's shifted mean over all eval lines, padded
  batches of 16 with -100 on padding) of the base model and of each PEFT adapter over the same
  dequantized model, in float32. Prints one JSON line.
"""
import argparse
import json
import os
import re
import sys
import time

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def status_mb(field):
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return round(int(m.group(1)) / 1024) if m else None


def load(gguf, dtype_name, threads):
    import torch
    torch.set_num_threads(threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=dtype, attn_implementation="sdpa")
    # The weights are dequantized dense tensors; transformers still marks the model GGUF-quantized
    # and Trainer refuses to train such a model. Drop the marks (as save_pretrained needs too).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return torch, tok, model


def encode(tok, lines, max_len):
    out = []
    for line in lines:
        ids = tok(line, add_special_tokens=True)["input_ids"]
        if tok.eos_token_id is not None and (not ids or ids[-1] != tok.eos_token_id):
            ids.append(tok.eos_token_id)
        out.append(ids[:max_len])
    return out


def pad_batch(torch, rows, pad_id):
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def read_lines(path):
    with open(path) as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def cmd_train(a):
    t_start = time.perf_counter()
    torch, tok, model = load(a.gguf, a.dtype, a.threads)
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM"))
    rows = encode(tok, read_lines(a.train), a.max_len)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    seen = {"tokens": 0, "padded": 0}

    def collate(features):
        b = pad_batch(torch, [f["input_ids"] for f in features], pad_id)
        seen["tokens"] += int(b["attention_mask"].sum())
        seen["padded"] += b["input_ids"].numel()
        return b

    args = TrainingArguments(
        output_dir=os.path.join(a.out, "hf-trainer"), per_device_train_batch_size=a.batch, max_steps=a.steps,
        learning_rate=a.lr, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        logging_steps=10, save_strategy="no", report_to=[], seed=a.seed, use_cpu=True, dataloader_num_workers=0,
        remove_unused_columns=False, disable_tqdm=True, bf16=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=[{"input_ids": r} for r in rows], data_collator=collate)
    load_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - t0
    model.save_pretrained(os.path.join(a.out, "adapter"))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(json.dumps({
        "impl": "hf", "dtype": a.dtype, "steps": a.steps, "batch": a.batch, "train_s": round(train_s, 2),
        "s_per_step": round(train_s / a.steps, 3), "tokens": seen["tokens"], "padded_tokens": seen["padded"],
        "tokens_per_s": round(seen["tokens"] / train_s, 1), "load_s": round(load_s, 1),
        "train_loss": round(result.training_loss, 4), "last_logged_loss": losses[-1] if losses else None,
        "peak_rss_mb": status_mb("VmHWM"), "threads": torch.get_num_threads(), "torch": torch.__version__.split("+")[0],
    }), flush=True)


def cmd_eval(a):
    torch, tok, model = load(a.gguf, "float32", a.threads)
    from peft import PeftModel
    model.eval()
    rows = encode(tok, read_lines(a.eval), a.max_len)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def nll(m):
        total, count = 0.0, 0
        with torch.inference_mode():
            for i in range(0, len(rows), 16):
                b = pad_batch(torch, rows[i : i + 16], pad_id)
                logits = m(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False).logits.float()
                lab = b["labels"][:, 1:]
                lp = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=-100, reduction="sum")
                total += float(lp)
                count += int((lab != -100).sum())
        return total / count, count

    out = {"evaluator": "peft over transformers' dequantized GGUF model, float32", "eval_lines": len(rows)}
    out["base"], out["tokens"] = nll(model)
    peft_model = None
    for spec in a.adapter:
        name, path = spec.split("=", 1)
        if peft_model is None:
            peft_model = PeftModel.from_pretrained(model, path, adapter_name=name)
        else:
            peft_model.load_adapter(path, adapter_name=name)
        peft_model.set_adapter(name)
        peft_model.eval()
        out[name], _ = nll(peft_model)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["train", "eval"])
    p.add_argument("--gguf", required=True)
    p.add_argument("--train")
    p.add_argument("--eval")
    p.add_argument("--out")
    p.add_argument("--adapter", action="append", default=[])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    (cmd_train if a.cmd == "train" else cmd_eval)(a)


if __name__ == "__main__":
    sys.exit(main())
