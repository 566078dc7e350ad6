#!/usr/bin/env python3
"""AdamW with clipping and weight decay in the real torch: a few steps of torch.optim.AdamW on a
PEFT adapter, each after clip_grad_norm_, on one sequence, at a constant learning rate.

Usage:
  python test/interop/adamw_check.py --model DIR --adapter ADAPTER_DIR --ids 1,2,3 --labels 1,2,3
      --lr 1e-3 --weight-decay 0.1 --max-grad-norm 0.05 --steps 3 --out OUT.safetensors
OUT.safetensors: the adapter tensors after the last step (keys as in adapter_model.safetensors).
OUT.json: {"losses": [per step], "grad_norms": [per step, before clipping], "versions": ...}.
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
    for name in ("--model", "--adapter", "--ids", "--labels", "--out"):
        ap.add_argument(name, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--weight-decay", type=float, required=True)
    ap.add_argument("--max-grad-norm", type=float, required=True)
    ap.add_argument("--steps", type=int, required=True)
    a = ap.parse_args()

    from peft import PeftModel

    pm = PeftModel.from_pretrained(C.load_model(a.model), a.adapter, is_trainable=True)
    pm.eval()  # no dropout
    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)  # betas 0.9/0.999, eps 1e-8
    ids = torch.tensor([[int(x) for x in a.ids.split(",")]])
    labels = torch.tensor([[int(x) for x in a.labels.split(",")]])
    losses, norms = [], []
    for _ in range(a.steps):
        opt.zero_grad()
        out = pm(input_ids=ids, labels=labels, use_cache=False)
        out.loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)))
        opt.step()
        losses.append(float(out.loss))
    C.save_tensors(a.out, {k: p for k, p in C.lora_params(pm).items()})
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump({"losses": losses, "grad_norms": norms, "versions": C.versions()}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
