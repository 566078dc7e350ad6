"""Reference data for the GGUF tests, from the real `gguf` package (gguf-py, numpy).

  dequant_ref.py cases OUTDIR        per-type blocks: OUTDIR/<case>.in (GGUF bytes) and .out (float32
                                     from gguf.quants.dequantize); prints a JSON manifest
  dequant_ref.py file GGUF           every tensor of a GGUF file: offset, type, shape, the sha256 of
                                     gguf's dequantized float32 bytes, and of the HF weight after
                                     transformers' Q/K reverse permutation; prints JSON
  dequant_ref.py tiny OUTDIR         a small Llama written with GGUFWriter (several types, Q/K
                                     permuted as llama.cpp's converter does) as OUTDIR/tiny.gguf, and
                                     the weights transformers' GGUF loader makes of it as an HF folder
                                     OUTDIR/hf (config.json + model.safetensors); prints JSON
"""
import hashlib
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

SEED = 20240611

# byte offsets of the f16 scale fields inside one block (ggml-common.h)
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
QUANTIZABLE = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
BLOCK_TYPES = list(F16_FIELDS)


def set_f16(blocks: np.ndarray, field: int, values: np.ndarray) -> None:
    """blocks: [n, block_bytes] uint8; writes uint16 values little-endian at byte `field`."""
    v = values.astype(np.uint16)
    blocks[:, field] = (v & 0xFF).astype(np.uint8)
    blocks[:, field + 1] = (v >> 8).astype(np.uint8)


def finite_f16(blocks: np.ndarray, qtype) -> None:
    """Random bytes may hold inf/NaN scales; clear one exponent bit where they do."""
    for f in F16_FIELDS[qtype]:
        v = blocks[:, f].astype(np.uint16) | (blocks[:, f + 1].astype(np.uint16) << 8)
        v = np.where((v & 0x7C00) == 0x7C00, v & ~np.uint16(0x0400), v)
        set_f16(blocks, f, v)


def cases(out_dir: str) -> None:
    rng = np.random.default_rng(SEED)
    manifest = []

    def emit(name: str, qtype, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data.reshape(-1).view(np.uint8))
        with np.errstate(all="ignore"):
            ref = dequantize(data.reshape(1, -1), qtype)
        ref = np.ascontiguousarray(ref, dtype=np.float32).reshape(-1)
        base = os.path.join(out_dir, name)
        data.tofile(base + ".in")
        ref.tofile(base + ".out")
        manifest.append({"case": name, "type": int(qtype), "typeName": qtype.name, "count": int(ref.size),
                         "input": base + ".in", "expected": base + ".out"})

    # 1. gguf.quants.quantize of random floats, where gguf can quantize the type
    for qtype in QUANTIZABLE:
        bs, _ = GGML_QUANT_SIZES[qtype]
        cols = 8 * max(bs, 32)
        x = (rng.standard_normal((16, cols)) * rng.choice([1e-3, 0.05, 1.0, 40.0], size=(16, 1))).astype(np.float32)
        x[3, : cols // 2] = 0  # zero blocks
        x[5] = -np.abs(x[5])   # all-negative rows (negative Q4_0/Q5_0/Q8_0 scales)
        emit(f"{qtype.name}-quantized", qtype, quantize(x, qtype))

    # 2. random bytes, f16 scales forced finite
    for qtype in BLOCK_TYPES:
        _, nb = GGML_QUANT_SIZES[qtype]
        blocks = rng.integers(0, 256, size=(96, nb), dtype=np.uint8)
        finite_f16(blocks, qtype)
        emit(f"{qtype.name}-random", qtype, blocks)

    # 3. edge cases of the scales: zero blocks, subnormal / negative / extreme f16 scales, inf/NaN
    for qtype in BLOCK_TYPES:
        _, nb = GGML_QUANT_SIZES[qtype]
        n = 64
        blocks = rng.integers(0, 256, size=(n, nb), dtype=np.uint8)
        for f in F16_FIELDS[qtype]:
            sub = rng.integers(1, 0x400, size=n).astype(np.uint16) | (rng.integers(0, 2, size=n).astype(np.uint16) << 15)
            sub[:8] = [0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400, 0x7BFF, 0xFBFF]  # tiny, normal edge, max
            sub[8:12] = [0x0000, 0x8000, 0x3C00, 0xBC00]  # +-0, +-1
            set_f16(blocks, f, sub)
        blocks[12:16] = 0  # all-zero blocks
        emit(f"{qtype.name}-scales", qtype, blocks)
        nonfinite = rng.integers(0, 256, size=(8, nb), dtype=np.uint8)
        for f in F16_FIELDS[qtype]:
            set_f16(nonfinite, f, np.array([0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7FFF, 0x3C00, 0x7C00], dtype=np.uint16))
        emit(f"{qtype.name}-nonfinite", qtype, nonfinite)

    # 4. every 16-bit pattern of F16 and BF16; F32 bit patterns incl. NaNs, infs, subnormals
    every = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    emit("F16-every-pattern", T.F16, every)
    emit("BF16-every-pattern", T.BF16, every)
    f32 = rng.integers(0, 2**32, size=4096, dtype=np.uint64).astype(np.uint32)
    f32[:8] = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x00000001, 0x807FFFFF]
    emit("F32-bit-patterns", T.F32, f32)
    print(json.dumps(manifest))


# GGUF -> HF names of a llama model (transformers' GGUF_TO_TRANSFORMERS_MAPPING / gguf's tensor map)
LAYER_NAMES = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def hf_name(gguf_name: str) -> str | None:
    parts = gguf_name.split(".")
    if parts[0] == "blk":
        return f"model.layers.{parts[1]}.{LAYER_NAMES[parts[2]]}.{parts[3]}"
    if parts[0] in TOP_NAMES:
        return f"{TOP_NAMES[parts[0]]}.{parts[1]}"
    return None  # rope_freqs etc.


def reverse_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    # transformers LlamaTensorProcessor._reverse_permute_weights (n_head already the kv count for k)
    dim = weights.shape[0] // n_head // 2
    w = weights.reshape(n_head, dim, 2, *weights.shape[1:])
    return w.swapaxes(2, 1).reshape(weights.shape)


def field(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def llama_config(reader: GGUFReader, vocab: int, tied: bool) -> dict:
    f32 = lambda v: float(str(np.float32(v)))  # noqa: E731 - the value as written, not its float32 widening
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
        "hidden_size": field(reader, "llama.embedding_length"), "intermediate_size": field(reader, "llama.feed_forward_length"),
        "num_hidden_layers": field(reader, "llama.block_count"), "num_attention_heads": field(reader, "llama.attention.head_count"),
        "num_key_value_heads": field(reader, "llama.attention.head_count_kv"),
        "max_position_embeddings": field(reader, "llama.context_length"),
        "rms_norm_eps": f32(field(reader, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": f32(field(reader, "llama.rope.freq_base")), "tie_word_embeddings": tied,
        "attention_bias": False, "torch_dtype": "float32",
    }


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


def describe(path: str) -> dict:
    reader = GGUFReader(path)
    names = {t.name for t in reader.tensors}
    n_head = field(reader, "llama.attention.head_count")
    n_kv = field(reader, "llama.attention.head_count_kv")
    vocab = None
    out = []
    for t in reader.tensors:
        name = hf_name(t.name)
        shape = [int(d) for d in reversed(t.shape)]
        deq = dequantize(t.data, t.tensor_type)
        assert list(deq.shape) == shape, (t.name, deq.shape, shape)
        heads = n_head if ".attn_q." in t.name else n_kv if ".attn_k." in t.name else 0
        hf = reverse_permute(deq, heads) if heads else deq
        if t.name == "token_embd.weight":
            vocab = shape[0]
        out.append({"gguf": t.name, "name": name, "type": int(t.tensor_type), "typeName": t.tensor_type.name,
                    "offset": int(t.data_offset), "nbytes": int(t.n_bytes), "shape": shape, "count": int(t.n_elements),
                    "permuteHeads": heads, "rawSha": sha(deq), "hfSha": sha(hf),
                    "head": [float(v) for v in hf.reshape(-1)[:4]]})
    return {"config": llama_config(reader, vocab, "output.weight" not in names), "tensors": out}


def permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute (the forward direction)
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def tiny(out_dir: str) -> None:
    from safetensors.numpy import save_file
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rng = np.random.default_rng(SEED + 1)
    H, I, V, L, NH, NKV = 64, 128, 96, 2, 4, 2
    D = H // NH
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": H,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": NKV,
           "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
           "attention_bias": True, "torch_dtype": "float32"}
    hf = {"model.embed_tokens.weight": rng.standard_normal((V, H)), "model.norm.weight": 1 + 0.1 * rng.standard_normal(H),
          "lm_head.weight": rng.standard_normal((V, H)) * 0.1}
    for i in range(L):
        p = f"model.layers.{i}."
        hf[p + "input_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(H)
        hf[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(H)
        for proj, out, inp, bias in [("self_attn.q_proj", NH * D, H, True), ("self_attn.k_proj", NKV * D, H, True),
                                     ("self_attn.v_proj", NKV * D, H, True), ("self_attn.o_proj", H, NH * D, True),
                                     ("mlp.gate_proj", I, H, False), ("mlp.up_proj", I, H, False), ("mlp.down_proj", H, I, False)]:
            hf[p + proj + ".weight"] = rng.standard_normal((out, inp)) * 0.1
            if bias:
                hf[p + proj + ".bias"] = rng.standard_normal(out) * 0.1
    hf = {k: v.astype(np.float32) for k, v in hf.items()}

    gguf_of = {v: k for k, v in LAYER_NAMES.items()}
    top_of = {v: k for k, v in TOP_NAMES.items()}

    def to_gguf_name(name: str) -> str:
        parts = name.split(".")
        if parts[1] == "layers":
            return f"blk.{parts[2]}.{gguf_of['.'.join(parts[3:-1])]}.{parts[-1]}"
        return f"{top_of['.'.join(parts[:-1])]}.{parts[-1]}"

    # a spread of storage types: every type gguf can write
    types = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]
    path = os.path.join(out_dir, "tiny.gguf")
    w = GGUFWriter(path, "llama")
    w.add_block_count(L)
    k = 0
    for name, x in hf.items():
        g = to_gguf_name(name)
        if ".attn_q." in g:
            x = permute(x, NH)
        elif ".attn_k." in g:
            x = permute(x, NKV)
        # layer 1's q/k weights stay F32: their round trip is lossless, so the check below
        # proves the two permutations inverse to each other on 2-D weights too
        exact = name in ("model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight")
        qtype = T.F32 if x.ndim == 1 or exact else types[k % len(types)]
        if x.ndim == 2:
            k += 1
        if qtype == T.F32:
            w.add_tensor(g, x)
        else:
            w.add_tensor(g, quantize(x, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # what transformers' GGUF loader makes of the file: dequantize, then its tensor processor
    processor = LlamaTensorProcessor(config=cfg)
    reader = GGUFReader(path)
    expected, tensors = {}, []
    for t in reader.tensors:
        name = hf_name(t.name)
        weights = processor.process(dequantize(t.data, t.tensor_type), t.name).weights
        expected[name] = np.ascontiguousarray(weights, dtype=np.float32)
        if t.tensor_type == T.F32:  # lossless: the round trip must give back the original weight
            assert np.array_equal(expected[name], hf[name]), name
        heads = NH if ".attn_q." in t.name else NKV if ".attn_k." in t.name else 0
        tensors.append({"name": name, "offset": int(t.data_offset), "type": int(t.tensor_type), "typeName": t.tensor_type.name,
                        "shape": [int(d) for d in reversed(t.shape)], **({"permuteHeads": heads} if heads else {})})
    hf_dir = os.path.join(out_dir, "hf")
    os.makedirs(hf_dir, exist_ok=True)
    save_file(expected, os.path.join(hf_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(cfg, f)
    print(json.dumps({"gguf": path, "hf": hf_dir, "config": cfg, "tensors": tensors}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "cases":
        cases(sys.argv[2])
    elif cmd == "file":
        print(json.dumps(describe(sys.argv[2])))
    elif cmd == "tiny":
        tiny(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {cmd}")
