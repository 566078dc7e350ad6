"""PEFT and transformers on what lorafit made from the real SmolLM2 GGUF: the reference for
test/gguf/peft-gguf.test.ts.

    python peft_gguf_ref.py GGUF_FILE ADAPTER_DIR MERGED_DIR INPUTS.safetensors OUT_DIR

- PEFT over transformers' dequantized copy of the GGUF: AutoModelForCausalLM.from_pretrained(dir,
  gguf_file=name, dtype=float32) then PeftModel.from_pretrained(base, ADAPTER_DIR) (the adapter
  lorafit trained on the same file): logits of each INPUTS ids.<i>; which adapter keys PEFT loaded;
  the warnings it gave; and what AutoPeftModelForCausalLM makes of base_model_name_or_path (a .gguf
  path).
- transformers on the folder `lorafit merge --model GGUF --adapter ADAPTER` wrote (MERGED_DIR):
  AutoModelForCausalLM.from_pretrained(MERGED_DIR, dtype=float32) logits, and AutoTokenizer's ids
  (texts and the chat template) beside the GGUF tokenizer's.

OUT_DIR/peft_gguf.safetensors: peft.logits.<i> [T, V], merged.logits.<i> [T, V] (float32);
OUT_DIR/peft_gguf.json: the checks.
"""
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import _common as C  # noqa: E402  (1 thread, deterministic, offline)
from _common import torch  # noqa: E402

TEXTS = ["Hello, world! How are you today?", "日本語のテキストと emoji 🎉 and code: def f(x): return x**2", "   spaces\tand\nnewlines  "]
CHAT = [{"role": "user", "content": "What is the moon?"}, {"role": "assistant", "content": "A rock in the sky, it is."}]


def main():
    gguf_path, adapter_dir, merged_dir, inputs, out = sys.argv[1:6]
    os.makedirs(out, exist_ok=True)
    from peft import AutoPeftModelForCausalLM, PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.dirname(os.path.abspath(gguf_path)), os.path.basename(gguf_path)
    ids = {k: v.to(torch.int64) for k, v in load_file(inputs).items()}
    tensors, info = {}, {"versions": C.versions()}

    base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation=C.ATTN_IMPL)
    base.eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = PeftModel.from_pretrained(base, adapter_dir)
    pm.eval()
    info["peft_warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    params = C.lora_params(pm)
    file_t = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    info["num_lora_tensors_loaded"] = len(params)
    info["adapter_keys_not_loaded"] = sorted(set(file_t) - set(params))
    info["lora_params_not_in_file"] = sorted(set(params) - set(file_t))
    info["lora_params_value_mismatch_vs_file"] = sorted(k for k in params if k in file_t and not torch.equal(params[k].detach().float(), file_t[k].float()))
    info["peft_target_modules"] = sorted(pm.peft_config["default"].target_modules)
    with torch.no_grad():
        for k, v in ids.items():
            tensors[f"peft.{k.replace('ids.', 'logits.')}"] = pm(v[None], use_cache=False).logits[0]

    # AutoPeftModel reads base_model_name_or_path: a .gguf path is not something from_pretrained opens
    try:
        AutoPeftModelForCausalLM.from_pretrained(adapter_dir)
        info["auto_peft"] = "loaded"
    except Exception as e:  # noqa: BLE001 (any failure is the finding)
        info["auto_peft"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"

    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32, attn_implementation=C.ATTN_IMPL)
    merged.eval()
    info["merged_config"] = merged.config.to_diff_dict()
    info["gguf_config"] = base.config.to_diff_dict()
    info["merged_tied"] = merged.lm_head.weight.data_ptr() == merged.model.embed_tokens.weight.data_ptr()
    with torch.no_grad():
        for k, v in ids.items():
            tensors[f"merged.{k.replace('ids.', 'logits.')}"] = merged(v[None], use_cache=False).logits[0]

    tok_gguf = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tok_merged = AutoTokenizer.from_pretrained(merged_dir)
    info["tokenizer_class"] = type(tok_merged).__name__
    info["text_ids"] = {"gguf": [tok_gguf(t).input_ids for t in TEXTS], "merged": [tok_merged(t).input_ids for t in TEXTS]}
    info["chat_ids"] = {
        "gguf": tok_gguf.apply_chat_template(CHAT, tokenize=True, return_dict=False),
        "merged": tok_merged.apply_chat_template(CHAT, tokenize=True, return_dict=False),
    }
    info["special"] = {
        side: {"bos": t.bos_token, "eos": t.eos_token, "pad": t.pad_token, "unk": t.unk_token}
        for side, t in (("gguf", tok_gguf), ("merged", tok_merged))
    }
    info["texts"] = TEXTS
    info["chat"] = CHAT

    from safetensors.torch import save_file
    save_file({k: v.contiguous().float() for k, v in tensors.items()}, os.path.join(out, "peft_gguf.safetensors"))
    with open(os.path.join(out, "peft_gguf.json"), "w") as f:
        json.dump(info, f, indent=1, default=str)


if __name__ == "__main__":
    main()
