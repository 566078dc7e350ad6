#!/usr/bin/env python3
"""Build a tiny random HF causal LM with the real transformers/PEFT code and dump reference outputs.

Usage:
  python test/interop/make_reference.py --arch {llama,llama3,qwen2,mistral,gemma,gemma2} --out DIR
      [--seed N] [--adapter] [--rslora] [--rank R] [--alpha A]
      [--targets q_proj,v_proj | all-linear] [--dtype float32|bfloat16] [--qwen2-sliding]

Every reference is computed with attn_implementation="eager", torch.set_num_threads(1), on CPU,
from the files as re-loaded from disk (what a TS test reads is what Python ran).

Outputs (DIR):
  model/        config.json, generation_config.json, model.safetensors (save_pretrained; float32
                unless --dtype bfloat16). Tied models (gemma, gemma2) have no lm_head.weight key.
  adapter/      (--adapter) adapter_config.json, adapter_model.safetensors (PEFT save_pretrained;
                the auto model card README.md is deleted; base_model_name_or_path = "model").
  reference.safetensors  (floats F32, ids I64):
    input_ids [2,16], attention_mask [2,16], labels [2,16]
    base.logits [2,16,V], base.loss [1], base.hidden_states.{0..L} [2,16,H]
        (HF output_hidden_states: 0 = embedding output (Gemma: after the sqrt(H) normaliser),
         i = output of decoder layer i-1, L = output of the FINAL NORM, not the raw last layer)
    gen.prompt [1,8], gen.base [1,16]                         greedy generate, 8 new tokens
    (--adapter) lora.logits, lora.loss, grad.<adapter key> (d lora.loss / d lora weight, key exactly
    as in adapter_model.safetensors), merged.logits (after merge_and_unload),
    merged.model.layers.0.self_attn.q_proj.weight (if q_proj is targeted), gen.lora [1,16]
  reference.json: arch, seed, versions, attn_implementation, config (as saved), lora config,
    scalars, checks (self-checks incl. fp32 vs fp64, softcap / sliding window / rope scaling
    ablations), notes, inventory of reference.safetensors.

Inputs: input_ids uniform in [3,256) from torch.Generator(seed+1); row 1 is RIGHT-padded: positions
12..15 = pad id 0 with attention_mask 0; labels = input_ids with -100 at positions 0..5 and on padding
(HF shifts inside the loss: 10 + 6 = 16 predicted tokens). No position_ids are passed.
"""
import argparse
import copy
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets threads / determinism before anything else)
from _common import torch  # noqa: E402

from tiny_configs import DEFAULT_SEEDS, build_config, init_weights  # noqa: E402

ALL_PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SEQ, PAD_FROM, LABEL_IGNORE_UNTIL, PROMPT_LEN, NEW_TOKENS = 16, 12, 6, 8, 8


def make_inputs(seed, vocab):
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(3, vocab, (2, SEQ), generator=g, dtype=torch.int64)
    mask = torch.ones(2, SEQ, dtype=torch.int64)
    ids[1, PAD_FROM:] = 0
    mask[1, PAD_FROM:] = 0
    labels = ids.clone()
    labels[:, :LABEL_IGNORE_UNTIL] = -100
    labels[mask == 0] = -100
    return ids, mask, labels


def forward(model, ids, mask, labels=None, hidden=False):
    return model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=hidden, use_cache=False)


def forward_rows_unpadded(model, ids, mask, labels):
    """Each row run alone, truncated to its valid length (no padding at all), as the fp64 reference.

    Why: in float64 HF's additive mask value finfo(float64).min becomes -inf when the eager softmax
    casts scores to float32, so a fully masked (padded) query row of a sliding-window layer gives
    NaN, and 0 * NaN in the next layer's p @ v spreads it to every valid position of that row.
    Right padding with default positions makes the valid positions of the unpadded run equal to
    those of the padded run. Returns (logits [B,T,V] zero at padding, HF-equivalent mean loss)."""
    B, Tn = ids.shape
    out = None
    ce_sum, n_tok = 0.0, 0
    for b in range(B):
        n = int(mask[b].sum())
        lg = model(input_ids=ids[b:b + 1, :n], attention_mask=mask[b:b + 1, :n], use_cache=False).logits
        if out is None:
            out = torch.zeros(B, Tn, lg.shape[-1], dtype=lg.dtype)
        out[b, :n] = lg[0].detach()
        tgt = labels[b, 1:n]
        ce_sum = ce_sum + torch.nn.functional.cross_entropy(lg[0, :n - 1].double(),
                                                            tgt, ignore_index=-100, reduction="sum")
        n_tok += int((tgt != -100).sum())
    return out, ce_sum / n_tok


def ablation(model_dir, dtype, ids, mask, ref_logits, valid, **overrides):
    m = C.load_model(model_dir, dtype, **overrides)
    with torch.no_grad():
        return C.maxabs(forward(m, ids, mask).logits, ref_logits, valid)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", required=True, choices=sorted(DEFAULT_SEEDS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--adapter", action="store_true")
    ap.add_argument("--rslora", action="store_true")
    ap.add_argument("--dora", action="store_true", help="use_dora=True (magnitudes scaled by 1 + 0.1 N(0,1) so they matter)")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8)
    ap.add_argument("--targets", default=",".join(ALL_PROJ))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--qwen2-sliding", action="store_true",
                    help="qwen2 only: use_sliding_window=true, sliding_window=4, max_window_layers=1, 3 layers")
    args = ap.parse_args()
    t0 = time.time()
    seed = DEFAULT_SEEDS[args.arch] if args.seed is None else args.seed
    dtype = C.DTYPES[args.dtype]
    out = os.path.abspath(args.out)
    model_dir, adapter_dir = os.path.join(out, "model"), os.path.join(out, "adapter")
    os.makedirs(out, exist_ok=True)
    for d in (model_dir, adapter_dir):
        shutil.rmtree(d, ignore_errors=True)

    from transformers import AutoModelForCausalLM

    # ---- build, init, save ------------------------------------------------------------------
    config, features = build_config(args.arch, qwen2_sliding=args.qwen2_sliding)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation=C.ATTN_IMPL)
    init_weights(model, args.arch, seed)
    model.to(dtype).eval()
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(model_dir)
    with open(os.path.join(model_dir, "config.json")) as f:
        saved_config = json.load(f)

    ids, mask, labels = make_inputs(seed, config.vocab_size)
    valid = mask.bool()
    T = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    checks, scalars, notes = {}, {}, {}

    with torch.no_grad():
        mem_logits = forward(model, ids, mask).logits

    # ---- base reference, from disk -----------------------------------------------------------
    base = C.load_model(model_dir, dtype)
    raw_last = {}
    hook = base.model.layers[-1].register_forward_hook(lambda m, i, o: raw_last.__setitem__("h", o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        o = forward(base, ids, mask, labels, hidden=True)
    hook.remove()
    T["base.logits"], T["base.loss"] = o.logits, o.loss.reshape(1)
    for i, h in enumerate(o.hidden_states):
        T[f"base.hidden_states.{i}"] = h
    L = len(o.hidden_states) - 1
    checks["base_reload_vs_in_memory_logits_maxabs"] = C.maxabs(o.logits, mem_logits)
    checks["loss_recomputed_from_logits_absdiff"] = abs(float(C.masked_loss(o.logits, labels) - o.loss))
    with torch.no_grad():
        checks["hidden_states_last_equals_final_norm_of_last_layer_maxabs"] = C.maxabs(base.model.norm(raw_last["h"]), o.hidden_states[-1])
        checks["hidden_states_last_vs_raw_last_layer_maxabs"] = C.maxabs(raw_last["h"], o.hidden_states[-1])
    notes["hidden_states"] = (f"base.hidden_states.0 = embedding output{' times the sqrt(hidden) normaliser' if 'gemma' in args.arch else ''}; "
                              f"base.hidden_states.i (1..{L - 1}) = output of decoder layer i-1; base.hidden_states.{L} = output of the final norm "
                              f"(model.norm), NOT the raw output of layer {L - 1} (transformers 5 ties the last entry to last_hidden_state)")
    scalars["base.loss"] = float(o.loss)

    # fp64 reference of the same weights (intrinsic noise of this fp32 run)
    m64 = C.load_model(model_dir, torch.float64)
    with torch.no_grad():
        l64, loss64 = forward_rows_unpadded(m64, ids, mask, labels)
    tag = "fp32" if dtype == torch.float32 else args.dtype
    checks[f"{tag}_vs_fp64_logits_maxabs"] = C.maxabs(o.logits, l64, valid)
    checks[f"{tag}_vs_fp64_loss_absdiff"] = abs(float(o.loss.double() - loss64))
    notes["fp64_reference"] = forward_rows_unpadded.__doc__.split("Returns")[0].strip()
    del m64

    # ---- ablations proving the distinctive features matter -----------------------------------
    if "attn_softcap" in features:
        checks["attn_softcap_changes_logits_maxabs"] = ablation(model_dir, dtype, ids, mask, o.logits, valid, attn_logit_softcapping=None)
        checks["final_softcap_changes_logits_maxabs"] = ablation(model_dir, dtype, ids, mask, o.logits, valid, final_logit_softcapping=None)
        checks["both_softcaps_change_logits_maxabs"] = ablation(model_dir, dtype, ids, mask, o.logits, valid, attn_logit_softcapping=None, final_logit_softcapping=None)
    if "sliding" in features:
        if args.arch == "mistral":
            over = {"sliding_window": None}
        else:
            over = {"layer_types": ["full_attention"] * config.num_hidden_layers}
        checks["sliding_window_changes_logits_maxabs"] = ablation(model_dir, dtype, ids, mask, o.logits, valid, **over)
        notes["sliding_window_ablation"] = f"compared with the same weights and {over}"
    if "query_pre_attn_scalar" in features:
        checks["query_pre_attn_scalar_vs_head_dim_changes_logits_maxabs"] = ablation(
            model_dir, dtype, ids, mask, o.logits, valid, query_pre_attn_scalar=config.head_dim)
    if "rope_scaling" in features:
        rp = dict(config.rope_parameters)
        plain = {"rope_type": "default", "rope_theta": rp["rope_theta"]}
        checks["rope_scaling_changes_logits_maxabs"] = ablation(model_dir, dtype, ids, mask, o.logits, valid, rope_parameters=plain)
        inv = base.model.rotary_emb.inv_freq
        inv0 = 1.0 / (rp["rope_theta"] ** (torch.arange(0, config.head_dim, 2, dtype=torch.int64).float() / config.head_dim))
        checks["rope_inv_freq_scaled"] = inv.tolist()
        checks["rope_inv_freq_unscaled"] = inv0.tolist()
        checks["rope_num_frequencies_changed"] = int((inv != inv0).sum())
    if config.model_type != "gemma2" and dtype == torch.float32:
        checks["eager_vs_sdpa_logits_maxabs_valid_positions"] = C.maxabs(
            o.logits, _sdpa_logits(model_dir, ids, mask), valid)

    # ---- generation (base) --------------------------------------------------------------------
    prompt = ids[:1, :PROMPT_LEN].clone()
    T["gen.prompt"] = prompt
    T["gen.base"] = C.hf_generate(base, prompt, NEW_TOKENS)
    ref_ids, margin = C.greedy_no_cache(base, prompt, NEW_TOKENS)
    checks["gen.base_equals_no_cache_greedy"] = bool(torch.equal(ref_ids, T["gen.base"]))
    scalars["gen.base.min_top1_top2_margin"] = margin

    lora_info = None
    if args.adapter:
        lora_info = run_adapter(args, seed, dtype, model_dir, adapter_dir, ids, mask, labels, valid, prompt, T, checks, scalars)

    # ---- write --------------------------------------------------------------------------------
    C.save_tensors(os.path.join(out, "reference.safetensors"), T)
    ref = {
        "arch": args.arch,
        "model_type": config.model_type,
        "architectures": saved_config.get("architectures"),
        "seed": seed,
        "dtype": args.dtype,
        "attn_implementation": C.ATTN_IMPL,
        "versions": C.versions(),
        "threads": torch.get_num_threads(),
        "features": features,
        "config": saved_config,
        "lora": lora_info,
        "inputs": {"seq": SEQ, "row1_padding_from": PAD_FROM, "pad_id": 0, "labels_ignored_before": LABEL_IGNORE_UNTIL,
                   "position_ids": "not passed (HF uses 0..15 for both rows)", "gen_new_tokens": NEW_TOKENS,
                   "gen_eos_stopping": "disabled (eos_token_id=None) so gen.* always have prompt+8 tokens"},
        "weight_init": _init_doc(args.arch, config),
        "scalars": scalars,
        "checks": checks,
        "notes": notes,
        "inventory": C.inventory(T),
        "seconds": round(time.time() - t0, 2),
    }
    C.write_json(os.path.join(out, "reference.json"), ref)
    print(json.dumps({"out": out, "seconds": ref["seconds"], "scalars": scalars,
                      "checks": {k: v for k, v in checks.items() if not isinstance(v, list)}}, indent=1))


def _sdpa_logits(model_dir, ids, mask):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
    with torch.no_grad():
        return forward(m, ids, mask).logits


def _init_doc(arch, config):
    tied = bool(config.tie_word_embeddings)
    return {
        "linear_weight": "N(0, 1/sqrt(in_features))",
        "embed_tokens": "N(0, 1/sqrt(hidden)) (tied to lm_head)" if tied else "N(0, 1)",
        "norm_weight": "U(-0.5, 0.5) (Gemma stores w for a (1+w) scale, so the effective scale is U(0.5,1.5))"
        if arch.startswith("gemma") else "U(0.5, 1.5)",
        "bias": "N(0, 0.2)",
        "order": "model.named_parameters() order, one torch.Generator(seed)",
    }


def run_adapter(args, seed, dtype, model_dir, adapter_dir, ids, mask, labels, valid, prompt, T, checks, scalars):
    from peft import LoraConfig, PeftModel, get_peft_model

    targets = "all-linear" if args.targets == "all-linear" else [t for t in args.targets.split(",") if t]
    lcfg = LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules=targets, lora_dropout=0.0, bias="none",
                      task_type="CAUSAL_LM", init_lora_weights=True, use_rslora=args.rslora,
                      use_dora=args.dora)
    base = C.load_model(model_dir, dtype)
    torch.manual_seed(seed + 2)  # PEFT's kaiming-uniform lora_A init draws from the global RNG
    pm = get_peft_model(base, lcfg)
    g = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for n, p in pm.named_parameters():  # module order: layers.0 q,k,v,o,gate,up,down, ...
            if ".lora_B." in n:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32).mul_(0.1).to(p.dtype))
            elif ".lora_magnitude_vector." in n:
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype))
    pm.eval()
    with torch.no_grad():
        mem_logits = forward(pm, ids, mask).logits
    pm.save_pretrained(adapter_dir)
    readme = os.path.join(adapter_dir, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    cfg_path = os.path.join(adapter_dir, "adapter_config.json")
    with open(cfg_path) as f:
        acfg = json.load(f)
    acfg["base_model_name_or_path"] = "model"  # relative, as in the 4.44 fixtures
    with open(cfg_path, "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)
        f.write("\n")
    del pm, base

    # reload from disk
    from safetensors.torch import load_file

    file_keys = sorted(load_file(os.path.join(adapter_dir, "adapter_model.safetensors")).keys())
    pm = PeftModel.from_pretrained(C.load_model(model_dir, dtype), adapter_dir, is_trainable=True)
    pm.eval()  # dropout is 0 anyway; eval keeps HF/PEFT in inference code paths
    params = C.lora_params(pm)
    checks["grad_keys_equal_adapter_file_keys"] = sorted(params) == file_keys
    o = forward(pm, ids, mask, labels)
    o.loss.backward()
    T["lora.logits"], T["lora.loss"] = o.logits.detach(), o.loss.detach().reshape(1)
    for k, p in params.items():
        T[f"grad.{k}"] = p.grad.detach().clone()
    scalars["lora.loss"] = float(o.loss)
    scalars["grad.max_abs"] = max(float(p.grad.abs().max()) for p in params.values())
    checks["adapter_reload_vs_in_memory_logits_maxabs"] = C.maxabs(o.logits, mem_logits)
    checks["lora_vs_base_logits_maxabs"] = C.maxabs(o.logits, T["base.logits"], valid)
    checks["lora_loss_recomputed_from_logits_absdiff"] = abs(float(C.masked_loss(o.logits, labels) - o.loss))
    scaling = args.alpha / (args.rank ** 0.5 if args.rslora else args.rank)
    some = next(m for n, m in pm.named_modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict) and "default" in m.scaling)
    checks["lora_scaling_expected"] = scaling
    checks["lora_scaling_peft"] = float(some.scaling["default"])

    # fp64 gradients of the same adapter
    pm64 = PeftModel.from_pretrained(C.load_model(model_dir, torch.float64), adapter_dir, is_trainable=True,
                                     autocast_adapter_dtype=False)
    pm64.eval()
    l64, loss64 = forward_rows_unpadded(pm64, ids, mask, labels)
    loss64.backward()
    p64 = C.lora_params(pm64)
    tag = "fp32" if dtype == torch.float32 else args.dtype
    checks[f"{tag}_vs_fp64_lora_grad_maxabs"] = max(C.maxabs(params[k].grad, p64[k].grad) for k in params)
    checks[f"{tag}_vs_fp64_lora_loss_absdiff"] = abs(float(o.loss.double() - loss64))
    checks[f"{tag}_vs_fp64_lora_logits_maxabs"] = C.maxabs(o.logits, l64, valid)
    del pm64

    # generation with the adapter (before merging)
    pm.zero_grad(set_to_none=True)
    T["gen.lora"] = C.hf_generate(pm, prompt, NEW_TOKENS)
    ref_ids, margin = C.greedy_no_cache(pm, prompt, NEW_TOKENS)
    checks["gen.lora_equals_no_cache_greedy"] = bool(torch.equal(ref_ids, T["gen.lora"]))
    scalars["gen.lora.min_top1_top2_margin"] = margin

    # merge
    qname = "model.layers.0.self_attn.q_proj"
    q_layer = pm.base_model.model.get_submodule(qname)
    manual_q = None
    if hasattr(q_layer, "lora_A"):
        with torch.no_grad():
            W = q_layer.base_layer.weight.detach().clone()
            manual_q = W + (q_layer.lora_B["default"].weight @ q_layer.lora_A["default"].weight) * q_layer.scaling["default"]
    merged = pm.merge_and_unload()
    merged.eval()
    with torch.no_grad():
        mo = forward(merged, ids, mask)
    T["merged.logits"] = mo.logits
    checks["merged_vs_lora_logits_maxabs"] = C.maxabs(mo.logits, o.logits, valid)
    if manual_q is not None:
        T[f"merged.{qname}.weight"] = merged.get_submodule(qname).weight.detach().clone()
        checks["merged_q_proj_vs_manual_W_plus_scale_BA_maxabs"] = C.maxabs(T[f"merged.{qname}.weight"], manual_q)

    return {"adapter_config": acfg, "scaling": scaling, "lora_A_init": f"PEFT kaiming_uniform_(a=sqrt(5)) after torch.manual_seed({seed + 2})",
            "lora_B_init": f"N(0, 0.1) from torch.Generator({seed + 3}), one draw per lora_B in named_parameters() (module) order, overwriting PEFT's zeros",
            "num_lora_tensors": len(params)}


if __name__ == "__main__":
    main()
