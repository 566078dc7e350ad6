#!/usr/bin/env python3
"""modules_to_save (lm_head, embed_tokens) with the real PEFT, all cases in one process.

Usage:
  python test/interop/peft_mts_check.py --spec SPEC.json
SPEC.json: {"cases": [{"id", "model": DIR, "inputs": golden.safetensors, "modules_to_save": [..],
  "targets": [..], "r", "alpha", "seed", "out": DIR, "lorafit": ADAPTER_DIR}]}
Per case, OUT (DIR):
  lorafit.safetensors  lorafit's adapter in PeftModel.from_pretrained(untouched base, is_trainable):
                       logits [B,T,V], loss [1], grad.<key> for every trainable tensor (keys as in
                       adapter_model.safetensors: the copies as base_model.model.<path>.weight),
                       merged.logits after merge_and_unload (untied models only)
  peft/                a PEFT adapter with the same settings, every trainable tensor perturbed
                       (seeded), save_pretrained
  peft.safetensors     peft.logits, base.logits
  report.json          versions, PEFT's trainable parameter names, file keys, load checks, tied-ness
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402


def file_key(name):
    """PeftModel parameter name -> adapter_model.safetensors key (what get_peft_model_state_dict writes)."""
    return C.adapter_key(name).replace(".modules_to_save.default.weight", ".weight")


def trainables(pm):
    return {file_key(n): p for n, p in pm.named_parameters() if p.requires_grad}


def read_inputs(path):
    from safetensors.torch import load_file

    t = load_file(path)
    ids = t["input_ids"].to(torch.int64)
    return ids, t["attention_mask"].to(torch.int64), t["labels"].to(torch.int64)


def run_case(case):
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import load_file

    out = case["out"]
    os.makedirs(out, exist_ok=True)
    ids, mask, labels = read_inputs(case["inputs"])
    report = {"id": case["id"], "versions": C.versions()}

    # lorafit -> PEFT
    base = C.load_model(case["model"])
    report["tied"] = base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr()
    pm = PeftModel.from_pretrained(base, case["lorafit"], is_trainable=True)
    pm.eval()
    params = trainables(pm)
    file_t = load_file(os.path.join(case["lorafit"], "adapter_model.safetensors"))
    report["lorafit.load"] = {
        "keys_not_loaded": sorted(set(file_t) - set(params)),
        "params_not_in_file": sorted(set(params) - set(file_t)),
        "value_mismatch": sorted(k for k in params if k in file_t and not torch.equal(params[k].detach().float(), file_t[k].float())),
    }
    o = pm(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False)
    o.loss.backward()
    lo = {"logits": o.logits.detach(), "loss": o.loss.detach().reshape(1)}
    lo.update({f"grad.{k}": p.grad for k, p in params.items() if p.grad is not None})
    if not report["tied"]:
        merged = pm.merge_and_unload()
        with torch.no_grad():
            lo["merged.logits"] = merged(input_ids=ids, attention_mask=mask, use_cache=False).logits
    C.save_tensors(os.path.join(out, "lorafit.safetensors"), lo)

    # PEFT-made
    base = C.load_model(case["model"])
    with torch.no_grad():
        base_logits = base(input_ids=ids, attention_mask=mask, use_cache=False).logits
    torch.manual_seed(case["seed"])
    cfg = LoraConfig(r=case["r"], lora_alpha=case["alpha"], target_modules=case["targets"], modules_to_save=case["modules_to_save"],
                     lora_dropout=0.0, task_type="CAUSAL_LM")
    pm = get_peft_model(base, cfg)
    pm.eval()
    report["peft.trainable"] = sorted(n for n, p in pm.named_parameters() if p.requires_grad)
    g = torch.Generator().manual_seed(2000 + case["seed"])
    with torch.no_grad():
        for k, p in trainables(pm).items():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    with torch.no_grad():
        peft_logits = pm(input_ids=ids, attention_mask=mask, use_cache=False).logits
    pm.save_pretrained(os.path.join(out, "peft"))
    report["peft.file_keys"] = sorted(k for k in load_file(os.path.join(out, "peft", "adapter_model.safetensors")) if "lora_" not in k)
    with open(os.path.join(out, "peft", "adapter_config.json")) as f:
        report["peft.config"] = json.load(f)
    C.save_tensors(os.path.join(out, "peft.safetensors"), {"peft.logits": peft_logits, "base.logits": base_logits})
    C.write_json(os.path.join(out, "report.json"), report)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    for case in spec["cases"]:
        run_case(case)
        print(case["id"], "done", flush=True)


if __name__ == "__main__":
    main()
