#!/usr/bin/env python3
"""Greedy generations and forward logits of an HF model folder from transformers, for the
interop tests of generation options and forward inputs (test/interop/hf-reference.test.ts).

Usage:
  python test/interop/hf_reference.py --model DIR --spec SPEC.json --out OUT.safetensors

SPEC.json: a list of cases,
  {"kind": "generate", "name": N, "prompt": [ids], "new": K, "repetition_penalty": P}
      greedy generate with KV cache, EOS stopping off (always prompt+K tokens) -> gen.N [1, T+K]
  {"kind": "forward", "name": N, "input_ids": [[ids]], "position_ids": [[..]] | null,
   "attention_mask": [[..]] | null, "dtype": "float32" | "float16"}
      model(input_ids, position_ids=..., attention_mask=...) logits, as float32 -> logits.N [B, T, V]
      (without attention_mask, transformers reads positions that restart as packed sequences and
      attends within each; with one, positions only move the rotary embedding)
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from transformers import GenerationConfig

    with open(args.spec) as f:
        cases = json.load(f)
    models = {}

    def model(dtype):
        if dtype not in models:
            models[dtype] = C.load_model(args.model, dtype=DTYPES[dtype])
        return models[dtype]

    out = {}
    for case in cases:
        if case["kind"] == "generate":
            prompt = torch.tensor([case["prompt"]], dtype=torch.int64)
            gc = GenerationConfig(max_new_tokens=case["new"], min_new_tokens=0, do_sample=False, eos_token_id=None, pad_token_id=0,
                                  bos_token_id=None, repetition_penalty=case["repetition_penalty"])
            with torch.no_grad():
                out[f"gen.{case['name']}"] = model("float32").generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=gc)
        elif case["kind"] == "forward":
            ids = torch.tensor(case["input_ids"], dtype=torch.int64)
            pos = None if case.get("position_ids") is None else torch.tensor(case["position_ids"], dtype=torch.int64)
            mask = None if case.get("attention_mask") is None else torch.tensor(case["attention_mask"], dtype=torch.int64)
            with torch.no_grad():
                o = model(case.get("dtype", "float32"))(input_ids=ids, position_ids=pos, attention_mask=mask, use_cache=False)
            out[f"logits.{case['name']}"] = o.logits.float()
        else:
            raise SystemExit(f"unknown case kind {case['kind']!r}")
    C.save_tensors(args.out, out)
    print(json.dumps({"versions": C.versions(), "inventory": C.inventory(out)}))


if __name__ == "__main__":
    main()
