#!/usr/bin/env python3
"""LoRA initialisations (init_lora_weights) with the real PEFT: gaussian, kaiming, PiSSA
(pissa, pissa_niter_N) and OLoRA, and PEFT's conversion of PiSSA/OLoRA adapters to plain LoRA
(save_pretrained(..., path_initial_model_for_weight_conversion=...)). All cases in one process.

Usage:
  python test/interop/peft_init_check.py --spec SPEC.json
SPEC.json: {"cases": [{"id", "model": DIR, "inputs": golden.safetensors, "init", "r", "alpha",
  "rslora", "targets": [..] | "all-linear", "seed", "out": DIR,
  "lorafit": {"plain": ADAPTER_DIR, "converted": ADAPTER_DIR | null} | null}]}
Per case, OUT (DIR):
  init.safetensors     init.<key>: every LoRA tensor right after get_peft_model under
                       torch.manual_seed(seed) (keys as in adapter_model.safetensors);
                       residual.<module>.weight: each wrapped module's base weight after the init
  peft/plain/          the adapter after a seeded perturbation of every factor ("training"),
                       PEFT save_pretrained (init_lora_weights as configured)
  peft/converted/      (pissa/olora) the same adapter converted to plain LoRA of rank 2r
  peft.safetensors     peft.logits [B,T,V]: the perturbed PEFT model (on its residual base);
                       base.logits: the untouched base;
                       lorafit.plain.logits / lorafit.converted.logits: lorafit's adapters loaded
                       by PeftModel.from_pretrained on a fresh untouched base (the plain one
                       after torch.manual_seed(seed), so pissa_niter draws as at creation)
  report.json          versions, the saved configs, key checks of PEFT's loading of lorafit's files
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402

ALL_PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def read_inputs(path):
    from safetensors.torch import load_file

    t = load_file(path)
    ids = t["input_ids"].to(torch.int64)
    return ids, t.get("attention_mask", torch.ones_like(ids)).to(torch.int64)


def lora_config(case):
    from peft import LoraConfig

    init = {"kaiming": True, "none": False}.get(case["init"], case["init"])
    targets = ALL_PROJ if case["targets"] == "all-linear" else case["targets"]
    return LoraConfig(r=case["r"], lora_alpha=case["alpha"], use_rslora=case["rslora"], target_modules=targets,
                      init_lora_weights=init, lora_dropout=0.0, task_type="CAUSAL_LM")


def residuals(pm):
    """<module>.weight -> base weight of every wrapped module (PEFT: ...<module>.base_layer.weight)."""
    out = {}
    for n, p in pm.named_parameters():
        if n.endswith(".base_layer.weight"):
            out["residual." + n[len("base_model.model."):].replace(".base_layer.weight", ".weight")] = p
    return out


def logits(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, use_cache=False).logits


def load_check(pm, adapter_dir):
    from safetensors.torch import load_file

    file_t = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    params = C.lora_params(pm)
    return {
        "keys_not_loaded": sorted(set(file_t) - set(params)),
        "params_not_in_file": sorted(set(params) - set(file_t)),
        "value_mismatch": sorted(k for k in params if k in file_t and not torch.equal(params[k].detach().float(), file_t[k].float())),
    }


def run_case(case):
    from peft import PeftModel, get_peft_model

    out = case["out"]
    os.makedirs(out, exist_ok=True)
    ids, mask = read_inputs(case["inputs"])
    rewrites = case["init"].startswith("pissa") or case["init"] == "olora"
    tensors, report = {}, {"id": case["id"], "versions": C.versions()}

    # the init, as lorafit's seed promises it
    base = C.load_model(case["model"])
    tensors["base.logits"] = logits(base, ids, mask)
    torch.manual_seed(case["seed"])
    pm = get_peft_model(base, lora_config(case))
    pm.eval()
    init = {"init." + k: v.detach().clone() for k, v in C.lora_params(pm).items()}
    init.update({k: v.detach().clone() for k, v in residuals(pm).items()})
    C.save_tensors(os.path.join(out, "init.safetensors"), init)

    # PEFT-made: save the initial adapter, "train" (a seeded perturbation of every factor), save
    peft_dir = os.path.join(out, "peft")
    pm.save_pretrained(os.path.join(peft_dir, "initial"))
    g = torch.Generator().manual_seed(1000 + case["seed"])
    with torch.no_grad():
        for k, p in C.lora_params(pm).items():
            p.add_(torch.randn(p.shape, generator=g) * (0.05 + 0.2 * float(p.abs().mean())))
    tensors["peft.logits"] = logits(pm, ids, mask)
    pm.save_pretrained(os.path.join(peft_dir, "plain"))
    if rewrites:
        pm.save_pretrained(os.path.join(peft_dir, "converted"),
                           path_initial_model_for_weight_conversion=os.path.join(peft_dir, "initial"))
    for sub in ("plain", "converted"):
        cfg = os.path.join(peft_dir, sub, "adapter_config.json")
        if os.path.exists(cfg):
            with open(cfg) as f:
                report[f"peft.{sub}.config"] = json.load(f)

    # lorafit-made: PEFT loads each of lorafit's folders on a fresh untouched base
    for kind, adapter_dir in (case.get("lorafit") or {}).items():
        if not adapter_dir:
            continue
        base = C.load_model(case["model"])
        torch.manual_seed(case["seed"])  # pissa_niter: the same draws as at creation
        pm = PeftModel.from_pretrained(base, adapter_dir)
        pm.eval()
        tensors[f"lorafit.{kind}.logits"] = logits(pm, ids, mask)
        report[f"lorafit.{kind}.load"] = load_check(pm, adapter_dir)

    C.save_tensors(os.path.join(out, "peft.safetensors"), tensors)
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
