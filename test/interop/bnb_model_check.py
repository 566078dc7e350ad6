#!/usr/bin/env python3
"""Whole-model NF4 interop with the real transformers + bitsandbytes (CPU backend).

transformers 5.23 + bitsandbytes 0.50.2 load and run a 4-bit model on CPU (device_map="cpu"):
Linear4bit.forward falls back to dequantize_4bit + F.linear when the optional `kernels` package
(AVX512-BF16 gemm) is absent, so logits are computable without a GPU.

Usage:
  # quantize a plain HF folder with transformers (BitsAndBytesConfig nf4, double quant) and save it
  python test/interop/bnb_model_check.py --model DIR --quantize-to OUT [--dtype float32|bfloat16]
  # run a bnb 4-bit folder (e.g. one lorafit saved) and dump what it holds
  python test/interop/bnb_model_check.py --model DIR --inputs INPUTS.safetensors --out OUT.safetensors

OUT.safetensors (run mode):
  logits [B,T,V] F32                    the 4-bit model's forward (eager attention) through
                                        dequantize_4bit + F.linear (Linear4bit's generic path)
  logits_cpu_kernel [B,T,V] F32         (only on CPUs with AVX512-BF16) the default inference path
                                        there: bitsandbytes 0.50.2 repacks the weight on the first
                                        eval forward (_convert_weight_packed_for_cpu: absmax cast
                                        to bf16, quant_state.dtype bf16) and runs gemv_4bit, so
                                        these logits carry bf16 rounding that dequantize_4bit has not
  <module>.dequantized [out,in] F32     bitsandbytes.functional.dequantize_4bit(weight, quant_state)
  <module>.packed [n/2,1] U8            the packed codes as bitsandbytes holds them
OUT.json: versions, the number of Linear4bit modules, the parsed quantization_config, load report.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
from _common import torch  # noqa: E402
from peft_check import read_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--quantize-to")
    ap.add_argument("--inputs")
    ap.add_argument("--out")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args()

    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    dtype = C.DTYPES[args.dtype]
    if args.quantize_to:
        cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=dtype)
        model = AutoModelForCausalLM.from_pretrained(args.model, quantization_config=cfg, device_map="cpu", dtype=dtype,
                                                     attn_implementation=C.ATTN_IMPL)
        model.save_pretrained(args.quantize_to)
        return 0

    ids, mask, _ = read_inputs(args.inputs)
    model, info = AutoModelForCausalLM.from_pretrained(args.model, device_map="cpu", dtype=dtype, attn_implementation=C.ATTN_IMPL,
                                                       output_loading_info=True)
    model.eval()
    out = {}
    n4 = 0
    for name, mod in model.named_modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            n4 += 1
            st = F.QuantState.from_dict(mod.weight.quant_state.as_dict(), device="cpu")
            st.dtype = torch.float32
            out[f"{name}.dequantized"] = F.dequantize_4bit(mod.weight.data, st).float().contiguous()
            out[f"{name}.packed"] = mod.weight.data.contiguous()
    linears = [mod for mod in model.modules() if isinstance(mod, bnb.nn.Linear4bit)]
    kernel = any(getattr(mod, "support_avx512bf16_for_cpu", False) for mod in linears)
    for mod in linears:
        mod.support_avx512bf16_for_cpu = False  # the generic dequantize + F.linear path
    with torch.no_grad():
        o = model(input_ids=ids, attention_mask=mask, use_cache=False)
    out["logits"] = o.logits.float().contiguous()
    if kernel:
        for mod in linears:
            mod.support_avx512bf16_for_cpu = True
        with torch.no_grad():
            o = model(input_ids=ids, attention_mask=mask, use_cache=False)
        out["logits_cpu_kernel"] = o.logits.float().contiguous()
    C.save_tensors(args.out, out)
    load = {k: sorted(map(str, v)) for k, v in info.items() if isinstance(v, (list, set, tuple))}
    report = {
        "versions": {**C.versions(), "bitsandbytes": bnb.__version__},
        "linear4bit_modules": n4,
        "avx512bf16_cpu_kernel": kernel,
        "quantization_config": model.config.quantization_config.to_dict() if hasattr(model.config, "quantization_config") else None,
        "load": load,
    }
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(report, f, indent=1, default=str)
    print(json.dumps(report, default=str))
    return 2 if any(load.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")) else 0


if __name__ == "__main__":
    sys.exit(main())
