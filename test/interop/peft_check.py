#!/usr/bin/env python3
"""Run a base model + a PEFT LoRA adapter written by someone else (lorafit) through real PEFT.

Usage:
  python test/interop/peft_check.py --model DIR/model --adapter ADAPTER_DIR \\
      --inputs INPUTS.safetensors --out OUT.safetensors [--dtype float32|bfloat16]

INPUTS.safetensors: input_ids [B,T] (I64 or I32), optional attention_mask [B,T] (default all ones),
  optional labels [B,T] (-100 = ignored; HF shifts internally).
OUT.safetensors (floats F32):
  logits [B,T,V]                       PeftModel(base, adapter) forward, eager attention
  loss [1]                             (if labels) HF causal-LM loss
  grad.<key> (shape of the adapter tensor) (if labels) d loss / d each LoRA weight, <key> exactly
                                       as in ADAPTER_DIR/adapter_model.safetensors
  base.logits [B,T,V]                  the same inputs through the base model without the adapter
  merged.logits [B,T,V]                after merge_and_unload()
OUT.json next to OUT.safetensors: versions, adapter_config, scaling, key checks (adapter keys that
  PEFT did not load, LoRA parameters not in the file), merged_vs_lora_logits_maxabs.
Exits with status 2 if PEFT did not load every tensor of the adapter file (key mismatch).
Deterministic: 1 thread, no dropout (eval mode; lora_dropout is ignored in eval).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402


def read_inputs(path):
    from safetensors.torch import load_file

    t = load_file(path)
    ids = t["input_ids"].to(torch.int64)
    mask = t.get("attention_mask", torch.ones_like(ids)).to(torch.int64)
    labels = t["labels"].to(torch.int64) if "labels" in t else None
    return ids, mask, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args()
    dtype = C.DTYPES[args.dtype]

    import json

    from peft import PeftModel
    from safetensors.torch import load_file

    ids, mask, labels = read_inputs(args.inputs)
    base = C.load_model(args.model, dtype)
    with torch.no_grad():
        base_logits = base(input_ids=ids, attention_mask=mask, use_cache=False).logits

    file_keys = sorted(load_file(os.path.join(args.adapter, "adapter_model.safetensors")).keys())
    with open(os.path.join(args.adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    pm = PeftModel.from_pretrained(base, args.adapter, is_trainable=labels is not None)
    pm.eval()
    params = C.lora_params(pm)
    missing_in_model = sorted(set(file_keys) - set(params))
    missing_in_file = sorted(set(params) - set(file_keys))
    # PEFT loads by name; a tensor it silently ignored would be missing from params, a tensor that the
    # file lacks would keep PEFT's init. Check values, too.
    file_t = load_file(os.path.join(args.adapter, "adapter_model.safetensors"))
    value_mismatch = sorted(k for k in params if k in file_t and not torch.equal(params[k].detach().float().cpu(), file_t[k].float()))

    out = {"base.logits": base_logits}
    ctx = torch.enable_grad() if labels is not None else torch.no_grad()
    with ctx:
        o = pm(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False)
    out["logits"] = o.logits.detach()
    if labels is not None:
        o.loss.backward()
        out["loss"] = o.loss.detach().reshape(1)
        for k, p in params.items():
            if p.grad is not None:
                out[f"grad.{k}"] = p.grad
    scal = next((float(m.scaling["default"]) for _, m in pm.named_modules()
                 if hasattr(m, "lora_A") and isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling), None)
    merged = pm.merge_and_unload()
    merged.eval()
    with torch.no_grad():
        out["merged.logits"] = merged(input_ids=ids, attention_mask=mask, use_cache=False).logits

    C.save_tensors(args.out, out)
    report = {
        "versions": C.versions(),
        "attn_implementation": C.ATTN_IMPL,
        "dtype": args.dtype,
        "adapter_config": acfg,
        "expected_scaling": acfg["lora_alpha"] / (acfg["r"] ** 0.5 if acfg.get("use_rslora") else acfg["r"]),
        "peft_scaling": scal,
        "num_lora_tensors_loaded": len(params),
        "adapter_keys_not_loaded": missing_in_model,
        "lora_params_not_in_file": missing_in_file,
        "lora_params_value_mismatch_vs_file": value_mismatch,
        "loss": float(o.loss) if labels is not None else None,
        "merged_vs_lora_logits_maxabs": C.maxabs(out["merged.logits"], out["logits"], mask),
        "lora_vs_base_logits_maxabs": C.maxabs(out["logits"], base_logits, mask),
        "inventory": C.inventory(out),
    }
    C.write_json(os.path.splitext(args.out)[0] + ".json", report)
    print(json.dumps({k: report[k] for k in ("num_lora_tensors_loaded", "adapter_keys_not_loaded", "lora_params_not_in_file",
                                             "lora_params_value_mismatch_vs_file", "loss", "lora_vs_base_logits_maxabs")}, indent=1))
    if missing_in_model or missing_in_file or value_mismatch:
        sys.exit(2)


if __name__ == "__main__":
    main()
