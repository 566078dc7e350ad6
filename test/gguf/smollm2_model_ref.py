"""The real transformers on the real SmolLM2 GGUF: the reference for test/gguf/smollm2-model.test.ts.

    python smollm2_model_ref.py GGUF_FILE OUT_DIR

Loads the file with AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=float32) (its
GGUF loader dequantizes every tensor and undoes llama.cpp's q/k permutation), tokenizes a few
prompts with transformers' own GGUF tokenizer (so the test needs no lorafit tokenizer), and writes
OUT_DIR/reference.safetensors (logits.<i> [T, V] fp32, ids.<i> [T] int64, gen.<i> [20] int64) and
OUT_DIR/reference.json (config, ids, generated tokens, the smallest top-1/top-2 margin of each
greedy run, so a failure can be told from a near-tie).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import _common  # noqa: E402,F401  (1 thread, deterministic, offline)

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

NEW_TOKENS = 20


def main():
    gguf_path, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    folder, name = os.path.dirname(os.path.abspath(gguf_path)), os.path.basename(gguf_path)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True),
        "The quick brown fox jumps over the lazy dog. Once upon a time",
        "def fibonacci(n):\n    ",
    ]
    tensors, info = {}, {"config": model.config.to_diff_dict(), "prompts": prompts, "ids": [], "gen": [], "gen_min_margin": []}
    with torch.no_grad():
        for i, p in enumerate(prompts):
            ids = tok(p, return_tensors="pt", add_special_tokens=False).input_ids
            logits = model(ids).logits[0].float()
            tensors[f"ids.{i}"] = ids[0].clone()
            tensors[f"logits.{i}"] = logits.contiguous()
            info["ids"].append(ids[0].tolist())
        # greedy, no eos (exactly NEW_TOKENS new tokens), KV cache as generate() does by default
        model.generation_config.eos_token_id = None
        for i in range(2):
            ids = tensors[f"ids.{i}"][None]
            r = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS, do_sample=False,
                               output_scores=True, return_dict_in_generate=True, pad_token_id=2)
            new = r.sequences[0, ids.shape[1]:]
            tensors[f"gen.{i}"] = new.clone()
            info["gen"].append(new.tolist())
            margins = [float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in r.scores]
            info["gen_min_margin"].append(min(margins))
    save_file(tensors, os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
