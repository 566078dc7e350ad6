"""Tiny configs (one per architecture) and the seeded weight initialiser used by make_reference.py.

Common: vocab 256, hidden 64, intermediate 128, 4 heads, 2 kv heads (GQA), pad 0, max positions 128.
  llama   2 layers, head_dim 16, rms 1e-5, rope_theta 500000, untied, no biases
  llama3  llama + rope_parameters llama3 (factor 8, low 1, high 4, original_max_position_embeddings
          64, theta 500000): with the real 8192 no frequency that matters inside 16 positions would
          change, with 64 one frequency is smoothed and six are divided by 8 (see reference.json)
  qwen2   2 layers, head_dim 16, rms 1e-6, theta 1e6, q/k/v biases; use_sliding_window false
          (--qwen2-sliding: 3 layers, use_sliding_window true, sliding_window 4, max_window_layers 1
          -> layer_types [full, sliding, sliding])
  mistral 2 layers, head_dim 16, rms 1e-5, theta 1e6, sliding_window 4 on every layer
  gemma   2 layers, head_dim 32 (q_proj out 128 != hidden 64), rms 1e-6, theta 10000, tied
          embeddings, hidden_act gelu_pytorch_tanh, bos 2 eos 1
  gemma2  3 layers (sliding, full, sliding), head_dim 16, query_pre_attn_scalar 32 (!= head_dim),
          attn_logit_softcapping 5.0 and final_logit_softcapping 3.0 (the real 50/30 barely
          touch logits of a tiny random model; see the ablation checks), sliding_window 4, tied
"""
import math

import torch

DEFAULT_SEEDS = {"llama": 1000, "qwen2": 2000, "mistral": 3000, "gemma": 4000, "gemma2": 5000, "llama3": 6000}

COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=128, pad_token_id=0, initializer_range=0.02, attention_dropout=0.0,
              use_cache=True)


def build_config(arch, qwen2_sliding=False):
    """Returns (config, features) where features lists what the ablation checks should exercise."""
    from transformers import Gemma2Config, GemmaConfig, LlamaConfig, MistralConfig, Qwen2Config

    feats = []
    if arch in ("llama", "llama3"):
        rope = {"rope_type": "default", "rope_theta": 500000.0}
        if arch == "llama3":
            rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
            feats.append("rope_scaling")
        cfg = LlamaConfig(**COMMON, num_hidden_layers=2, head_dim=16, rms_norm_eps=1e-5, rope_parameters=rope,
                          tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, hidden_act="silu",
                          attention_bias=False, mlp_bias=False)
    elif arch == "qwen2":
        kw = dict(num_hidden_layers=2, use_sliding_window=False, sliding_window=None, max_window_layers=28)
        if qwen2_sliding:
            kw = dict(num_hidden_layers=3, use_sliding_window=True, sliding_window=4, max_window_layers=1)
            feats.append("sliding")
        cfg = Qwen2Config(**COMMON, **kw, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                          tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, hidden_act="silu")
        feats.append("qkv_bias")
    elif arch == "mistral":
        cfg = MistralConfig(**COMMON, num_hidden_layers=2, head_dim=16, rms_norm_eps=1e-5, sliding_window=4,
                            rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=False,
                            bos_token_id=1, eos_token_id=2, hidden_act="silu")
        feats.append("sliding")
    elif arch == "gemma":
        cfg = GemmaConfig(**COMMON, num_hidden_layers=2, head_dim=32, rms_norm_eps=1e-6,
                          rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=True,
                          bos_token_id=2, eos_token_id=1, hidden_act="gelu_pytorch_tanh", attention_bias=False)
        feats += ["tied", "embed_normalizer", "one_plus_w_norm", "head_dim_ne_hidden_over_heads"]
    elif arch == "gemma2":
        cfg = Gemma2Config(**COMMON, num_hidden_layers=3, head_dim=16, rms_norm_eps=1e-6, query_pre_attn_scalar=32,
                           attn_logit_softcapping=5.0, final_logit_softcapping=3.0, sliding_window=4,
                           layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=True,
                           bos_token_id=2, eos_token_id=1, hidden_activation="gelu_pytorch_tanh", attention_bias=False)
        feats += ["tied", "embed_normalizer", "one_plus_w_norm", "sandwich_norms", "attn_softcap", "final_softcap",
                  "sliding", "query_pre_attn_scalar"]
    else:
        raise ValueError(arch)
    return cfg, feats


@torch.no_grad()
def init_weights(model, arch, seed):
    """Seeded init so every weight matters: linear N(0, 1/sqrt(in)), embeddings N(0,1) (1/sqrt(hidden)
    when tied), norm scales U(0.5,1.5) (Gemma's (1+w) norms: w ~ U(-0.5,0.5)), biases N(0, 0.2)."""
    g = torch.Generator().manual_seed(seed)
    gemma = arch.startswith("gemma")
    tied = bool(model.config.tie_word_embeddings)
    hidden = model.config.hidden_size
    for name, p in model.named_parameters():  # a tied lm_head is not listed separately
        shape = p.shape
        if "embed_tokens" in name:
            std = 1.0 / math.sqrt(hidden) if tied else 1.0
            v = torch.randn(shape, generator=g) * std
        elif "norm" in name:
            v = torch.rand(shape, generator=g) + (-0.5 if gemma else 0.5)
        elif name.endswith(".bias"):
            v = torch.randn(shape, generator=g) * 0.2
        elif p.dim() == 2:
            v = torch.randn(shape, generator=g) / math.sqrt(shape[1])
        else:
            raise ValueError(f"no init rule for {name} {tuple(shape)}")
        p.copy_(v.to(p.dtype))
    if tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"
