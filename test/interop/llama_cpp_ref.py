#!/usr/bin/env python3
"""Tiny random mistral / gemma / gemma2 models and transformers' greedy sequences, for the GGUF
exports that test/export/llama-cpp-archs.test.ts runs in llama.cpp.

    python llama_cpp_ref.py --out DIR [--arch mistral,gemma,gemma2] [--new-tokens 16]

Per arch (tiny_configs.py's config and seeded weights, with the changes below), DIR/<arch>/:
  model/    save_pretrained (float32)
  adapter/  PEFT LoRA r=4, alpha=8 on q/k/v/o/gate/up/down (lora_A: PEFT's init after
            torch.manual_seed(seed + 2); lora_B: N(0, 0.1) from Generator(seed + 3)), so it is no no-op
  reference.json  {prompt, base, lora, base_margin, lora_margin, config_changes, ...}
    ablations: {name: ids} HF generate of the base model with one setting changed (mistral:
    sliding_window 4, what the tiny config had; gemma2: no attention soft-cap, no sliding window),
    so a test can see that matching `base` depended on the setting.
    base_probs: softmax probability of each generated base token; no_final_softcap_probs (gemma2):
    the same without the final soft-cap (which changes probabilities, never a greedy token).
    prompt: 8 ids; base / lora: prompt + new tokens of HF generate (greedy, KV cache, EOS off) of
    the model / the PeftModel; *_margin: the smallest top-1 minus top-2 logit over those steps
    (cache-free greedy, which must give the same ids).

Config changes, each because llama.cpp cannot express the HF setting in a GGUF file:
  mistral: sliding_window 4 -> None. llama.cpp runs Mistral as the llama architecture, which has
           no sliding window (convert_hf_to_gguf writes none): a windowed model means something
           else there once the sequence is longer than the window.
  gemma2:  query_pre_attn_scalar 32 -> head_dim (16). GGUF has no key for it; llama.cpp scales
           queries by 1/sqrt(head_dim) (by 1/sqrt(hidden/heads) only for the 27B model type).
And one so that a setting shows in the tokens: gemma2's attn_logit_softcapping 5.0 -> 1.0 (this
tiny model's attention scores are small: a cap of 5 changes no greedy token, a cap of 1 does).
  Soft-capping (gemma2 attn 5.0, final 3.0) and gemma2's sliding window 4 on layers 0 and 2 stay:
  the export writes them and llama.cpp applies them.
And two choices so the sequences test something: with tiny_configs' init a tied Gemma head mostly
repeats one token forever (the last token's own embedding dominates its logits), so gemma/gemma2
scale the embedding (and so the head) down (EMBED_SCALE); and the prompt seed (PROMPT_SEED) is
one whose base sequence has several distinct tokens and a smallest top-1/top-2 margin far above
fp32 noise (>= 3e-3 against ~1e-5).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (1 thread, deterministic, offline)
from _common import torch  # noqa: E402

from tiny_configs import DEFAULT_SEEDS, build_config, init_weights  # noqa: E402

PROMPT_LEN = 8
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
EMBED_SCALE = {"mistral": 1.0, "gemma": 0.2, "gemma2": 0.35}
PROMPT_SEED = {"mistral": 1, "gemma": 31, "gemma2": 1}  # added to the arch's seed
ABLATIONS = {
    "mistral": {"sliding_window_4": {"sliding_window": 4}},
    "gemma": {},
    "gemma2": {"no_attn_softcap": {"attn_logit_softcapping": None},
               "no_sliding_window": {"sliding_window": 4096}},
}
CHANGES = {
    "mistral": {"sliding_window": None},
    "gemma": {},
    "gemma2": {"query_pre_attn_scalar": "head_dim", "attn_logit_softcapping": 1.0},
}


def build(arch, out):
    from transformers import AutoModelForCausalLM

    cfg, _ = build_config(arch)
    applied = {}
    for k, v in CHANGES[arch].items():
        value = cfg.head_dim if v == "head_dim" else v
        applied[k] = [getattr(cfg, k), value]
        setattr(cfg, k, value)
    seed = DEFAULT_SEEDS[arch]
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation=C.ATTN_IMPL)
    init_weights(model, arch, seed)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(EMBED_SCALE[arch])
    model.save_pretrained(os.path.join(out, "model"), safe_serialization=True)
    return seed, applied


def make_adapter(model_dir, adapter_dir, seed):
    from peft import LoraConfig, get_peft_model

    base = C.load_model(model_dir)
    torch.manual_seed(seed + 2)
    pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=PROJ, lora_dropout=0.0, bias="none",
                                         task_type="CAUSAL_LM", init_lora_weights=True))
    g = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".lora_B." in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    pm.save_pretrained(adapter_dir)
    readme = os.path.join(adapter_dir, "README.md")
    if os.path.exists(readme):
        os.remove(readme)


@torch.no_grad()
def top_probs(model, ids, prompt_len):
    """softmax(logits)[chosen token] at each generated position (fp64 softmax of the final logits)."""
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits[0].double()
    p = torch.softmax(logits, dim=-1)
    return [float(p[t - 1, ids[0, t]]) for t in range(prompt_len, ids.shape[1])]


def generate(model, prompt, steps):
    """HF generate's ids, checked against a cache-free greedy loop, the smallest margin and the
    probability of each chosen token."""
    ids = C.hf_generate(model, prompt, steps)
    again, margin = C.greedy_no_cache(model, prompt, steps)
    if not torch.equal(ids, again):
        raise SystemExit("generate() and the cache-free greedy loop disagree")
    return ids[0].tolist(), margin, top_probs(model, ids, prompt.shape[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="mistral,gemma,gemma2")
    ap.add_argument("--new-tokens", type=int, default=16)
    args = ap.parse_args()
    from peft import PeftModel

    for arch in args.arch.split(","):
        out = os.path.join(args.out, arch)
        seed, applied = build(arch, out)
        model_dir, adapter_dir = os.path.join(out, "model"), os.path.join(out, "adapter")
        make_adapter(model_dir, adapter_dir, seed)
        g = torch.Generator().manual_seed(seed + PROMPT_SEED[arch])
        prompt = torch.randint(3, 256, (1, PROMPT_LEN), generator=g, dtype=torch.int64)
        base, base_margin, base_probs = generate(C.load_model(model_dir), prompt, args.new_tokens)
        pm = PeftModel.from_pretrained(C.load_model(model_dir), adapter_dir).eval()
        lora, lora_margin, _ = generate(pm, prompt, args.new_tokens)
        ablations = {name: C.hf_generate(C.load_model(model_dir, **kw), prompt, args.new_tokens)[0].tolist()
                     for name, kw in ABLATIONS[arch].items()}
        # A final soft-cap is monotonic: it never changes a greedy token, only the probabilities.
        no_final_cap_probs = (top_probs(C.load_model(model_dir, final_logit_softcapping=None), torch.tensor([base]), PROMPT_LEN)
                              if arch == "gemma2" else None)
        C.write_json(os.path.join(out, "reference.json"), {
            "arch": arch, "seed": seed, "config_changes": applied, "embed_scale": EMBED_SCALE[arch], "versions": C.versions(),
            "prompt": prompt[0].tolist(), "base": base, "lora": lora,
            "base_margin": base_margin, "lora_margin": lora_margin, "ablations": ablations,
            "base_probs": base_probs, "no_final_softcap_probs": no_final_cap_probs,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
