#!/usr/bin/env python3
"""Loss, LoRA gradients and logits of PEFT over transformers for PACKED rows (padding-free batches).

Usage:
  python test/interop/packed_check.py --model DIR --adapter ADAPTER_DIR --inputs IN.safetensors \\
      --out OUT.safetensors [--attn sdpa|eager]

IN.safetensors: input_ids [B,T] and position_ids [B,T] that restart at 0 for every example laid in
  the row, labels [B,T] (-100 = ignored; the first label of every example is -100, as
  DataCollatorWithFlattening writes them). No attention mask is passed: transformers reads the
  restarting position_ids as packed sequences and attends within each
  (masking_utils.find_packed_sequence_indices).
OUT.safetensors (F32): loss [1], logits [B,T,V], grad.<adapter key> for every LoRA weight.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    args = ap.parse_args()

    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    t = load_file(args.inputs)
    ids = t["input_ids"].to(torch.int64)
    pos = t["position_ids"].to(torch.int64)
    labels = t["labels"].to(torch.int64)
    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation=args.attn)
    model = PeftModel.from_pretrained(base, args.adapter, is_trainable=True)
    model.eval()  # no dropout; gradients still flow
    out = model(input_ids=ids, position_ids=pos, labels=labels, use_cache=False)
    out.loss.backward()
    res = {"loss": out.loss.detach().reshape(1).float(), "logits": out.logits.detach().float().contiguous()}
    for key, p in C.lora_params(model).items():
        res["grad." + key] = p.grad.detach().float().contiguous()
    save_file(res, args.out)


if __name__ == "__main__":
    main()
