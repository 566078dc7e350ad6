"""GGUF files of tiny models of every architecture, written the way llama.cpp writes them, and the
references for test/gguf/architectures.test.ts.

    python arch_ref.py OUT_DIR

For each case a tiny random HF model is built with test/interop/tiny_configs.py (transformers'
own classes), written to OUT_DIR/<case>.gguf with gguf-py's GGUFWriter following
convert_hf_to_gguf.py (llama.cpp's tensor names from gguf.get_tensor_name_map, its metadata keys,
LlamaModel.permute on q/k for the llama architecture, Gemma's norm weights + 1, Llama 3's
rope_freqs.weight factors), and loaded back with transformers' GGUF loader
(AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)). The reference logits come from that
load where transformers reads the file faithfully, else from the original HF model (see `ref` in
OUT_DIR/reference.json and the reason there): lorafit must match what the file means.

Writes OUT_DIR/reference.safetensors (<case>.input_ids [2,16], <case>.logits [2,16,256],
<case>.gen.prompt [8], <case>.gen.tokens [8]) and OUT_DIR/reference.json (per case: ref, why,
transformers_gguf ("ok" or its error), transformers_gguf_vs_original (max |logit diff|),
gguf_names (HF name -> gguf-py's GGUF name), gen_min_margin).
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import _common as C  # noqa: E402  (1 thread, deterministic, offline)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import gguf  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from tiny_configs import DEFAULT_SEEDS, build_config, init_weights  # noqa: E402

# case -> (tiny_configs arch, GGUF architecture, general.name, 2-D tensor types)
CASES = {
    "llama": ("llama", "llama", "tiny llama", None),
    "llama-quant": ("llama", "llama", "tiny llama", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]),
    "llama3": ("llama3", "llama", "tiny llama3", None),
    "mistral": ("mistral", "llama", "mistral", None),
    "qwen2": ("qwen2", "qwen2", "tiny qwen2", None),
    "qwen2-q8": ("qwen2", "qwen2", "tiny qwen2", ["Q8_0"]),
    "gemma": ("gemma", "gemma", "tiny gemma", None),
    "gemma2": ("gemma2", "gemma2", "tiny gemma2", None),
}
ARCH = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2, "gemma": gguf.MODEL_ARCH.GEMMA, "gemma2": gguf.MODEL_ARCH.GEMMA2}


def build(case):
    arch = CASES[case][0]
    cfg, _ = build_config(arch)
    if arch == "mistral":
        # llama.cpp's llama architecture has no sliding window (a Mistral GGUF attends to everything):
        # the original model is made full-attention so that it means what the file means.
        cfg.sliding_window = None
    if arch == "gemma2":
        # GGUF has no query_pre_attn_scalar: llama.cpp scales queries by 1/sqrt(head_dim)
        cfg.query_pre_attn_scalar = cfg.head_dim
    torch.manual_seed(DEFAULT_SEEDS[arch])
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation=C.ATTN_IMPL)
    init_weights(model, arch, DEFAULT_SEEDS[arch])
    return model.eval()


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute"""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(cfg):
    """convert_hf_to_gguf.py LlamaModel.generate_extra_tensors (rope_type llama3)"""
    rs = cfg.rope_parameters
    base = rs.get("rope_theta", 10000.0)
    dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rs.get("factor", 8.0), rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    low_wl, high_wl = old / low, old / high
    out = []
    for freq in freqs:
        wl = 2 * math.pi / freq
        if wl < high_wl:
            out.append(1)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (old / wl - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(case, model, path):
    arch_name, gg_arch, name, qtypes = CASES[case][0], CASES[case][1], CASES[case][2], CASES[case][3]
    cfg = model.config
    w = gguf.GGUFWriter(path, gg_arch)
    w.add_name(name)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if qtypes is None else gguf.LlamaFileType.MOSTLY_Q8_0)
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if getattr(cfg, "head_dim", None) is not None:  # TextModel.set_gguf_parameters writes them when head_dim is set
        w.add_key_length(hd)
        w.add_value_length(hd)
    if gg_arch == "llama":
        w.add_rope_dimension_count(hd)
    if gg_arch == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
        w.add_sliding_window(cfg.sliding_window)
    w.add_bos_token_id(cfg.bos_token_id)
    w.add_eos_token_id(cfg.eos_token_id)
    w.add_pad_token_id(cfg.pad_token_id)

    name_map = gguf.get_tensor_name_map(ARCH[gg_arch], cfg.num_hidden_layers)
    names = {}
    sd = model.state_dict()
    if arch_name == "llama3":
        w.add_tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", llama3_rope_factors(cfg))
    i = 0
    for hf, t in sd.items():
        if hf == "lm_head.weight" and (gg_arch.startswith("gemma") or cfg.tie_word_embeddings):
            continue
        base, suffix = hf.rsplit(".", 1)
        g = name_map.get_name(base)
        assert g is not None, hf
        g = f"{g}.{suffix}"
        names[hf] = g
        data = t.detach().float().numpy().copy()
        if gg_arch == "llama" and g.endswith(("attn_q.weight", "attn_q.bias")):
            data = permute(data, cfg.num_attention_heads, cfg.num_attention_heads)
        if gg_arch == "llama" and g.endswith(("attn_k.weight", "attn_k.bias")):
            data = permute(data, cfg.num_attention_heads, cfg.num_key_value_heads)
        if gg_arch.startswith("gemma") and g.endswith("norm.weight"):
            data = data + 1
        if qtypes is not None and data.ndim == 2:
            qt = gguf.GGMLQuantizationType[qtypes[i % len(qtypes)]]
            i += 1
            w.add_tensor(g, gguf.quants.quantize(data, qt), raw_dtype=qt)
        else:
            w.add_tensor(g, data.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return names


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tensors, info = {}, {}
    g = torch.Generator().manual_seed(1234)
    for case in CASES:
        model = build(case)
        path = os.path.join(out, f"{case}.gguf")
        names = write_gguf(case, model, path)
        ids = torch.randint(3, model.config.vocab_size, (2, 16), generator=g)
        prompt = ids[0, :8]
        entry = {"gguf_names": names}
        with torch.no_grad():
            original = model(ids).logits
            try:
                hg = AutoModelForCausalLM.from_pretrained(out, gguf_file=f"{case}.gguf", dtype=torch.float32, attn_implementation=C.ATTN_IMPL).eval()
                entry["transformers_gguf"] = "ok"
                entry["transformers_gguf_model_type"] = hg.config.model_type
                from_gguf = hg(ids).logits
                entry["transformers_gguf_vs_original"] = float((from_gguf - original).abs().max())
            except Exception as e:  # noqa: BLE001  (recorded: the test reports what transformers refused)
                hg = None
                entry["transformers_gguf"] = f"{type(e).__name__}: {e}"
            arch = CASES[case][0]
            if hg is not None and arch not in ("llama3", "gemma2"):
                ref, entry["ref"], entry["why"] = hg, "transformers-gguf", "transformers' GGUF loader reads this file faithfully"
            else:
                ref, entry["ref"] = model, "original"
                entry["why"] = {
                    "llama3": "transformers' GGUF loader ignores rope_freqs.weight (Llama 3 rope scaling)",
                    "gemma2": "transformers' GGUF loader ignores gemma2.attn_logit_softcapping/final_logit_softcapping (uses 50/30) and uses query_pre_attn_scalar 256",
                }.get(arch, "transformers' GGUF loader refuses this file")
            logits = ref(ids).logits
            gen = ref.generate(prompt[None], attention_mask=torch.ones(1, 8, dtype=torch.long), max_new_tokens=8, do_sample=False,
                               eos_token_id=None, pad_token_id=0, output_scores=True, return_dict_in_generate=True)
            entry["gen_min_margin"] = min(float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in gen.scores)
        tensors[f"{case}.input_ids"] = ids.clone()
        tensors[f"{case}.logits"] = logits.float().contiguous()
        tensors[f"{case}.gen.prompt"] = prompt.clone()
        tensors[f"{case}.gen.tokens"] = gen.sequences[0, 8:].clone()
        info[case] = entry
    save_file(tensors, os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
