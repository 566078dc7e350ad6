#!/usr/bin/env python3
"""Combine two LoRA adapters with PEFT's add_weighted_adapter and dump the results.

Usage:
  python test/interop/peft_combine.py --model DIR --adapters A_DIR,B_DIR --weights W1,W2 \\
      --types cat,linear --inputs INPUTS.safetensors --out OUT.safetensors

INPUTS.safetensors: input_ids [B,T], optional attention_mask [B,T] (as peft_check.py).
OUT.safetensors (floats F32):
  source0.logits, source1.logits      each input adapter alone (PeftModel, eager attention)
  <type>.logits                       the combined adapter alone, for each --types entry
  <type>.<key>                        the combined adapter's tensors, keys as in adapter_model.safetensors
OUT.json: versions, the combined adapters' configs (r, lora_alpha, use_rslora) and PEFT scalings.
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
    ap.add_argument("--adapters", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--types", default="cat,linear")
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    t = load_file(args.inputs)
    ids = t["input_ids"].to(torch.int64)
    mask = t.get("attention_mask", torch.ones_like(ids)).to(torch.int64)
    dirs = args.adapters.split(",")
    weights = [float(w) for w in args.weights.split(",")]
    names = [f"source{i}" for i in range(len(dirs))]

    base = C.load_model(args.model)
    pm = PeftModel.from_pretrained(base, dirs[0], adapter_name=names[0])
    for d, n in zip(dirs[1:], names[1:]):
        pm.load_adapter(d, adapter_name=n)
    pm.eval()
    out, report = {}, {"versions": C.versions(), "combined": {}}

    def logits():
        with torch.no_grad():
            return pm(input_ids=ids, attention_mask=mask, use_cache=False).logits

    for n in names:
        pm.set_adapter(n)
        out[f"{n}.logits"] = logits()
    for kind in args.types.split(","):
        name = f"combo_{kind}"
        pm.add_weighted_adapter(names, weights, name, combination_type=kind)
        pm.set_adapter(name)
        out[f"{kind}.logits"] = logits()
        for k, v in get_peft_model_state_dict(pm, adapter_name=name).items():
            out[f"{kind}.{k}"] = v
        cfg = pm.peft_config[name]
        scal = next(float(m.scaling[name]) for _, m in pm.named_modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict) and name in m.scaling)
        report["combined"][kind] = {"r": cfg.r, "lora_alpha": cfg.lora_alpha, "use_rslora": cfg.use_rslora, "scaling": scal}
    C.save_tensors(args.out, out)
    C.write_json(os.path.splitext(args.out)[0] + ".json", report)


if __name__ == "__main__":
    main()
