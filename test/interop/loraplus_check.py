#!/usr/bin/env python3
"""LoRA+ with the real PEFT: create_loraplus_optimizer's learning rate for every adapter tensor,
and one AdamW step of it on one sequence.

Usage:
  python test/interop/loraplus_check.py --model DIR --adapter ADAPTER_DIR --ids 1,2,3 --labels 1,2,3
      --lr 1e-3 --ratio 16 --out OUT.safetensors
OUT.safetensors: the adapter tensors after the step (keys as in adapter_model.safetensors).
OUT.json: {"lr": {key: learning rate}, "loss": float, "versions": ...}.
torch.optim.AdamW defaults (betas 0.9/0.999, eps 1e-8); LoRA+ weight decay 0; no clipping.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--ratio", type=float, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    from peft import PeftModel
    from peft.optimizers import create_loraplus_optimizer

    pm = PeftModel.from_pretrained(C.load_model(a.model), a.adapter, is_trainable=True)
    pm.eval()  # no dropout
    opt = create_loraplus_optimizer(pm, torch.optim.AdamW, lr=a.lr, loraplus_lr_ratio=a.ratio)
    names = {id(p): n for n, p in pm.named_parameters()}
    lrs = {C.adapter_key(names[id(p)]): g["lr"] for g in opt.param_groups for p in g["params"]}
    ids = torch.tensor([[int(x) for x in a.ids.split(",")]])
    labels = torch.tensor([[int(x) for x in a.labels.split(",")]])
    out = pm(input_ids=ids, labels=labels, use_cache=False)
    out.loss.backward()
    opt.step()
    C.save_tensors(a.out, {k: p for k, p in C.lora_params(pm).items()})
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump({"lr": lrs, "loss": float(out.loss), "versions": C.versions()}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
