#!/usr/bin/env python3
"""Run a plain HF model folder (e.g. a merged-model export written by lorafit) through transformers.

Usage:
  python test/interop/transformers_check.py --model DIR --inputs INPUTS.safetensors --out OUT.safetensors
      [--dtype float32|bfloat16] [--hidden-states]

INPUTS.safetensors: input_ids [B,T] (I64 or I32), optional attention_mask [B,T] (default all ones),
  optional labels [B,T].
OUT.safetensors (floats F32):
  logits [B,T,V]          AutoModelForCausalLM.from_pretrained(DIR, attn_implementation="eager")
  loss [1]                (if labels) HF causal-LM loss (shifted, mean over labels != -100)
  hidden_states.{i}       (--hidden-states) HF output_hidden_states; the last is after the final norm
OUT.json: versions, the config as transformers parsed it (model_type, architectures, rope_parameters,
  tie_word_embeddings, ...), load report (missing / unexpected keys: exit status 2 if any).
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
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--hidden-states", action="store_true")
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM

    ids, mask, labels = read_inputs(args.inputs)
    model, info = AutoModelForCausalLM.from_pretrained(args.model, dtype=C.DTYPES[args.dtype], attn_implementation=C.ATTN_IMPL,
                                                       output_loading_info=True)
    model.eval()
    with torch.no_grad():
        o = model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=args.hidden_states, use_cache=False)
    out = {"logits": o.logits}
    if labels is not None:
        out["loss"] = o.loss.reshape(1)
    if args.hidden_states:
        for i, h in enumerate(o.hidden_states):
            out[f"hidden_states.{i}"] = h
    C.save_tensors(args.out, out)
    load = {k: sorted(map(str, v)) for k, v in info.items() if isinstance(v, (list, set, tuple))}
    cfg = model.config
    report = {
        "versions": C.versions(),
        "attn_implementation": C.ATTN_IMPL,
        "dtype": args.dtype,
        "model_class": type(model).__name__,
        "parsed_config": {k: getattr(cfg, k, None) for k in (
            "model_type", "architectures", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_parameters", "tie_word_embeddings", "sliding_window",
            "layer_types", "hidden_act", "hidden_activation", "attn_logit_softcapping", "final_logit_softcapping",
            "query_pre_attn_scalar")},
        "load_info": load,
        "loss": float(o.loss) if labels is not None else None,
        "inventory": C.inventory(out),
    }
    C.write_json(os.path.splitext(args.out)[0] + ".json", report)
    print(json.dumps({"model_class": report["model_class"], "load_info": load, "loss": report["loss"]}, indent=1))
    if load.get("missing_keys") or load.get("unexpected_keys") or load.get("mismatched_keys"):
        sys.exit(2)


if __name__ == "__main__":
    main()
