#!/usr/bin/env python3
"""Run the real bitsandbytes NF4 quantizer (CPU backend) and dump everything lorafit must match.

Run by test/native/quant.test.ts with the interop venv (LORAFIT_PYTHON, which has bitsandbytes):
    $LORAFIT_PYTHON test/interop/bnb_nf4_check.py --out /tmp/bnb_nf4.safetensors
    build/native-tests/quant_test test/fixtures/hf/nf4/nf4_reference.safetensors /tmp/bnb_nf4.safetensors

Output keys (all F32 or U8 so the C++ test's tiny reader can read them; bf16 inputs are stored
widened to F32, which is exact):
    case<k>.weight                F32 [out, in]  input (case 0: fp32, case 1: bf16 values)
    case<k>.packed                U8  [n/2, 1]   quantize_4bit(..., nf4, 64, compress_statistics)
    case<k>.absmax_q              U8  [nblocks]  QuantState.absmax (nested codes)
    case<k>.absmax2               F32 [ceil(nblocks/256)]  state2.absmax
    case<k>.nested_code           F32 [256]      state2.code
    case<k>.offset                F32 [1]
    case<k>.absmax_plain          F32 [nblocks]  same weight, compress_statistics=False
    case<k>.dequantized           F32 [out, in]  dequantize_4bit(packed, state) (fp32 output)
    case<k>.dequantized_plain     F32 [out, in]  dequantize_4bit of the plain (non-nested) state
    case<k>.dequantized_bf16      F32 [out, in]  dequantize_4bit with a bf16 quant dtype, widened
    case<k>.x, case<k>.gy         F32 [5, in], [5, out]  matmul input and output gradient (in the
                                  weight's dtype, widened)
    case<k>.matmul                F32 [5, out]   bnb.matmul_4bit(x, packed.t(), state) with autograd
    case<k>.matmul_nograd         F32 [5, out]   the same under no_grad (the gemm_4bit op)
    case<k>.grad_x                F32 [5, in]    d(sum(matmul * gy))/dx
    case<k>.threads               F32 [1]        torch.get_num_threads() (fp32 GEMM order depends on it)
    serialized.<key>              the quant_state.as_dict(packed=True) tensors of case 0 (prefix
                                  "weight." as in HF checkpoints); the JSON blob is U8.
The metadata holds the bitsandbytes/torch versions and the decoded JSON blob.

------------------------------------------------------------------------------------------
Findings (bitsandbytes 0.50.2 from PyPI, torch 2.15.0, CPU only, no GPU):
* CPU paths: quantize_4bit has no CPU-specific kernel; it runs the pure-torch "default"
  backend (fp32 absmax per block; scale = A * (1/absmax.clamp(min=1e-38)) for full blocks but
  A / absmax for the last partial block; torch.bucketize against fp32 midpoints of the NF4
  code; odd n padded with one 0.0 -> low nibble 7). dequantize_4bit, quantize_blockwise and
  dequantize_blockwise have native CPU kernels in libbitsandbytes_cpu.so (fp32/bf16/fp16).
  gemv_4bit on CPU needs AVX512-BF16 plus the optional `kernels` package, otherwise it falls
  back to dequantize + F.linear. int8 matmul uses torch._int_mm only with AVX512.
  The CUDA kernels (kQuantizeBlockwise etc.) are what the shared fixture models. On the fixture
  weight the CPU backend reproduces packed, absmax, absmax_quantized, absmax2, offset and the
  dequantized values exactly. On the random cases here lorafit equals bitsandbytes-CPU on packed
  NF4 bytes, fp32 absmax, absmax2, offset and every dequantized value (fp32 and bf16 outputs),
  for fp32 and bf16 inputs, partial last blocks and odd numel.
* matmul_4bit on CPU, as training calls it (no AVX512-BF16 repacking, which happens only in
  eval mode): dequantize_4bit + torch.nn.functional.linear, backward grad_x = grad_y @ W. lorafit's
  quantized_linear on the same state gives the same fp32 and bf16 results bit for bit when both
  run on the same number of threads (fp32 GEMM sums in a thread-count-dependent order: 1 vs 2
  threads differ by ~2e-7 here). The eval-mode fused bf16 kernel is compared at the model level in
  bnb-model.test.ts (within bf16 rounding).
* The one CPU/CUDA divergence: bitsandbytes' CPU quantize_blockwise (csrc/common.cpp:
  x / absmax, BinSearch "Direct2", then the nearer of idx and idx+1) sometimes returns the code
  one below the nearest; CUDA dQuantize (binary search + fp32 midpoints; lorafit) returns the
  nearest. Seen on 2 of 612 double-quant absmax codes in case1 (e.g. x = 0.0606392 between
  code[176] = 0.0592188 and code[177] = 0.0620313: CPU 176, CUDA/lorafit 177).
* All-zero blocks: the CPU/default backend clamps absmax to 1e-38 for the scale, so zeros get
  code 7 (0.0); CUDA computes 0 * (1/0) = NaN -> code 0 (-1.0). lorafit follows the CPU backend
  (a zero block then dequantizes to exact 0 even with double quant).
* create_dynamic_map(signed=True) depends on the torch version: on torch 2.15 it differs in
  42/256 entries (1-2 ulp) from the fixture's map (bitsandbytes 0.43.3 on torch 1.13) because
  torch's CPU linspace kernel changed. The map a checkpoint was quantized with is stored in
  it (nested_quant_map); loaders must use the stored map. lorafit uses the fixture map.
* Serialized layout: Params4bit in a HF checkpoint is stored as the packed uint8 weight under
  "<module>.weight" plus quant_state.as_dict(packed=True) entries under "<module>.weight.<k>":
    weight                                   U8  [n/2, 1]       packed codes (high nibble first)
    weight.absmax                            U8  [nblocks]      (nested) or F32 [nblocks] (plain)
    weight.quant_map                         F32 [16]           NF4 code book
    weight.nested_absmax                     F32 [ceil(nblocks/256)]
    weight.nested_quant_map                  F32 [256]          signed dynamic map
    weight.quant_state.bitsandbytes__nf4     U8  [len(json)]    UTF-8 JSON of the non-tensor fields
  JSON blob of this script's case 0 (fp32 [300, 130] weight), byte for byte:
    {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [300, 130],
     "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.12919571995735168}
  (one line, json.dumps default separators; a bf16 weight has "dtype": "bfloat16"). The offset
  is stored only as a JSON double (the float32 mean widened, so float(double) restores it
  exactly); "dtype" is the original weight dtype without "torch."; "shape" is the original
  [out, in]. Without compress_statistics the nested_* keys are absent, weight.absmax is F32,
  and the JSON has only quant_type, blocksize, dtype, shape. bitsandbytes reloads it with
  QuantState.from_dict (key "quant_state.bitsandbytes__nf4" selects the quant type).
"""

import argparse
import json
from pathlib import Path
import sys

import torch

import bitsandbytes as bnb
import bitsandbytes.functional as F
from safetensors.torch import load_file, save_file

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "hf" / "nf4" / "nf4_reference.safetensors")


def quantize(w, compress):
    packed, st = F.quantize_4bit(w, blocksize=64, compress_statistics=compress, quant_type="nf4")
    return packed, st


def dump_case(out, k, w, fp32_out):
    packed, st = quantize(w, True)
    packed_p, st_p = quantize(w, False)
    assert torch.equal(packed, packed_p)
    out[f"case{k}.weight"] = w.float().clone()
    out[f"case{k}.packed"] = packed.clone()
    out[f"case{k}.absmax_q"] = st.absmax.clone()
    out[f"case{k}.absmax2"] = st.state2.absmax.float().contiguous()
    out[f"case{k}.nested_code"] = st.state2.code.float().contiguous()
    out[f"case{k}.offset"] = st.offset.float().reshape(1).contiguous()
    out[f"case{k}.absmax_plain"] = st_p.absmax.float().contiguous()
    st_f32 = F.QuantState.from_dict(st.as_dict(), device="cpu")
    st_f32.dtype = torch.float32
    out[f"case{k}.dequantized"] = F.dequantize_4bit(packed, st_f32).float().contiguous()
    st_p.dtype = torch.float32
    out[f"case{k}.dequantized_plain"] = F.dequantize_4bit(packed_p, st_p).float().contiguous()
    st_b = F.QuantState.from_dict(st.as_dict(), device="cpu")
    st_b.dtype = torch.bfloat16
    out[f"case{k}.dequantized_bf16"] = F.dequantize_4bit(packed, st_b).float().contiguous()
    dump_matmul(out, k, w.dtype, packed, st)
    return packed, st


def dump_matmul(out, k, dtype, packed, st):
    """bnb.matmul_4bit as QLoRA training calls it (Linear4bit.forward with the weight transposed),
    in the weight's dtype: with autograd (MatMul4Bit: dequantize_4bit + linear, backward
    grad_x = grad_y @ dequantize_4bit(W)) and without (the gemm_4bit op)."""
    g = torch.Generator().manual_seed(4321 + k)  # its own generator: the weights stay as they were
    x = (torch.randn(5, st.shape[1], generator=g) * 0.5).to(dtype)
    gy = torch.randn(5, st.shape[0], generator=g).to(dtype)
    xg = x.clone().requires_grad_(True)
    y = bnb.matmul_4bit(xg, packed.t(), quant_state=st)
    y.backward(gy)
    with torch.no_grad():
        y_nograd = bnb.matmul_4bit(x, packed.t(), quant_state=st)
    out[f"case{k}.x"] = x.float().contiguous()
    out[f"case{k}.gy"] = gy.float().contiguous()
    out[f"case{k}.matmul"] = y.detach().float().contiguous()
    out[f"case{k}.matmul_nograd"] = y_nograd.float().contiguous()
    out[f"case{k}.grad_x"] = xg.grad.float().contiguous()
    # fp32 GEMM results depend on how BLAS splits the work, so on the thread count.
    out[f"case{k}.threads"] = torch.tensor([float(torch.get_num_threads())])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/bnb_nf4.safetensors")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--cols", type=int, default=130)  # 39000 values: partial last block
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    print(f"bitsandbytes {bnb.__version__}, torch {torch.__version__}")

    out = {}
    w0 = torch.randn(args.rows, args.cols) * 0.05
    w0[7, :].zero_()  # a zero row -> an all-zero block (rows of 130: block 14 is mostly zero)
    w0[0, :64] = 0.0  # block 0 fully zero
    packed0, st0 = dump_case(out, 0, w0, True)
    w1 = (torch.randn(args.rows + 1, args.cols) * 0.02).to(torch.bfloat16)  # odd n = 39130
    dump_case(out, 1, w1, False)

    # HF-checkpoint serialization of case 0 (what Params4bit / transformers save).
    sd = st0.as_dict(packed=True)
    blob_key = [k for k in sd if k.startswith("quant_state.")][0]
    blob = bytes(sd[blob_key].tolist())
    print("as_dict(packed=True) layout (HF key = '<module>.weight.' + key):")
    print(f"  weight: {tuple(packed0.shape)} {packed0.dtype}")
    for k, v in sd.items():
        print(f"  weight.{k}: {tuple(v.shape)} {v.dtype}")
        out[f"serialized.weight.{k}"] = v.clone()
    out["serialized.weight"] = packed0.clone()
    print(f"  {blob_key} JSON: {blob.decode()}")

    # The real bitsandbytes vs the shared fixture (CPU backend).
    ref = load_file(FIXTURE)
    p, st = quantize(ref["weight"], True)
    pp, stp = quantize(ref["weight"], False)
    checks = {
        "packed": torch.equal(p, ref["nf4.packed"]),
        "absmax": torch.equal(stp.absmax, ref["nf4.absmax"]),
        "absmax_quantized": torch.equal(st.absmax, ref["dq.absmax_quantized"]),
        "absmax2": torch.equal(st.state2.absmax, ref["dq.absmax2"]),
        "offset_absdiff": abs(st.offset.item() - ref["dq.offset"].item()),
        "nf4_code": torch.equal(F.get_4bit_type("nf4", device="cpu"), ref["nf4.code"]),
        "dynamic_map_mismatches": int((F.create_dynamic_map(True) != ref["dq.code"]).sum()),
    }
    stp.dtype = torch.float32
    checks["dequantized_plain"] = torch.equal(F.dequantize_4bit(pp, stp), ref["nf4.dequantized"])
    print("bitsandbytes CPU vs fixture:", json.dumps(checks))

    meta = {
        "bitsandbytes": bnb.__version__,
        "torch": torch.__version__,
        "quant_state_key": blob_key,
        "quant_state_json": blob.decode(),
        "fixture_checks": json.dumps(checks),
    }
    save_file(out, args.out, metadata=meta)
    print(f"wrote {args.out} ({len(out)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
