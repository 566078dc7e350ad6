#!/usr/bin/env python3
"""LoRA variants on an NF4 base with the real PEFT + bitsandbytes (CPU backend, Linear4bit
modules): DoRA, and the OLoRA init (PEFT dequantizes, splits, and re-quantizes the residual).

Usage:
  python test/interop/peft_nf4_check.py --model BNB_DIR --inputs golden.safetensors --lorafit ADAPTER_DIR
      --targets q_proj,v_proj --r 4 --alpha 8 --seed N [--use-dora] [--init olora] --out DIR
BNB_DIR: a 4-bit NF4 folder (lorafit's model.save of an NF4 model), loaded by transformers as
Linear4bit modules; every Linear4bit runs the generic dequantize_4bit + F.linear path
(support_avx512bf16_for_cpu off, see bnb_model_check.py), so the numbers are exact NF4.
OUT (DIR):
  lorafit.safetensors  lorafit's adapter in PeftModel.from_pretrained(4-bit base, is_trainable):
                       logits, loss [1], grad.<key> for every adapter tensor (magnitudes included)
                       (an olora adapter: PEFT re-runs the init on the 4-bit base while loading)
  init.safetensors     init.<key>: PEFT's initial adapter tensors under torch.manual_seed(seed);
                       residual.<module>.weight: each wrapped Linear4bit's dequantized weight after it
  peft/                the adapter PEFT made on the 4-bit base (DoRA magnitudes from the
                       dequantized weight), every tensor perturbed (seeded), save_pretrained
  peft.safetensors     peft.logits, base.logits
  report.json          versions, Linear4bit count, load checks of lorafit's file
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402


def load_4bit(path):
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, device_map="cpu", dtype=torch.float32, attn_implementation=C.ATTN_IMPL)
    model.eval()
    linears = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for m in linears:
        m.support_avx512bf16_for_cpu = False  # exact dequantize_4bit + F.linear
    return model, len(linears)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for a in ("--model", "--inputs", "--lorafit", "--targets", "--out"):
        ap.add_argument(a, required=True)
    ap.add_argument("--r", type=int, required=True)
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--use-dora", action="store_true")
    ap.add_argument("--init", default="kaiming")
    args = ap.parse_args()

    import bitsandbytes as bnb
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import load_file

    from peft_check import read_inputs

    os.makedirs(args.out, exist_ok=True)
    ids, mask, labels = read_inputs(args.inputs)
    report = {"versions": {**C.versions(), "bitsandbytes": bnb.__version__}}

    # lorafit -> PEFT
    base, n4 = load_4bit(args.model)
    report["linear4bit_modules"] = n4
    pm = PeftModel.from_pretrained(base, args.lorafit, is_trainable=True)
    pm.eval()
    params = C.lora_params(pm)
    file_t = load_file(os.path.join(args.lorafit, "adapter_model.safetensors"))
    report["lorafit.load"] = {
        "keys_not_loaded": sorted(set(file_t) - set(params)),
        "params_not_in_file": sorted(set(params) - set(file_t)),
        "value_mismatch": sorted(k for k in params if k in file_t and not torch.equal(params[k].detach().float(), file_t[k].float())),
    }
    o = pm(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False)
    o.loss.backward()
    out = {"logits": o.logits.detach(), "loss": o.loss.detach().reshape(1)}
    out.update({f"grad.{k}": p.grad for k, p in params.items() if p.grad is not None})
    C.save_tensors(os.path.join(args.out, "lorafit.safetensors"), out)

    # PEFT-made DoRA on the 4-bit base
    base, _ = load_4bit(args.model)
    with torch.no_grad():
        base_logits = base(input_ids=ids, attention_mask=mask, use_cache=False).logits
    torch.manual_seed(args.seed)
    init = True if args.init == "kaiming" else args.init
    cfg = LoraConfig(r=args.r, lora_alpha=args.alpha, target_modules=args.targets.split(","), use_dora=args.use_dora, init_lora_weights=init,
                     lora_dropout=0.0, task_type="CAUSAL_LM")
    pm = get_peft_model(base, cfg)
    pm.eval()
    import bitsandbytes.functional as F

    initial = {"init." + k: v.detach().clone() for k, v in C.lora_params(pm).items()}
    for name, mod in pm.named_modules():
        if isinstance(mod, bnb.nn.Linear4bit) and name.endswith(".base_layer"):
            st = F.QuantState.from_dict(mod.weight.quant_state.as_dict(), device="cpu")
            st.dtype = torch.float32
            key = name[len("base_model.model."):-len(".base_layer")]
            initial[f"residual.{key}.weight"] = F.dequantize_4bit(mod.weight.data, st).float()
    C.save_tensors(os.path.join(args.out, "init.safetensors"), initial)
    g = torch.Generator().manual_seed(3000 + args.seed)
    with torch.no_grad():
        for k, p in C.lora_params(pm).items():
            if k.endswith("lora_magnitude_vector"):
                p.mul_(1 + 0.2 * (2 * torch.rand(p.shape, generator=g) - 1))
            else:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    with torch.no_grad():
        peft_logits = pm(input_ids=ids, attention_mask=mask, use_cache=False).logits
    pm.save_pretrained(os.path.join(args.out, "peft"))
    C.save_tensors(os.path.join(args.out, "peft.safetensors"), {"peft.logits": peft_logits, "base.logits": base_logits})
    C.write_json(os.path.join(args.out, "report.json"), report)


if __name__ == "__main__":
    main()
