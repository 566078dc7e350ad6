#!/usr/bin/env python3
"""transformers' GGUF load for bench/gguf.ts: from_pretrained(dir, gguf_file=name) in the given
dtype; prints one JSON line {loadSeconds, peakRssMiB, params}. The import of torch/transformers is
not timed (lorafit's child does not time loading its addon either)."""
import argparse, json, os, resource, time

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
p = argparse.ArgumentParser()
p.add_argument("--gguf", required=True)
p.add_argument("--dtype", default="float32")
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
import torch
from transformers import AutoModelForCausalLM

torch.set_num_threads(a.threads)
t0 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.gguf)), gguf_file=os.path.basename(a.gguf),
                                             dtype=getattr(torch, a.dtype))
load = time.perf_counter() - t0
print(json.dumps({"loadSeconds": load, "peakRssMiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "params": sum(p.numel() for p in model.parameters())}))
