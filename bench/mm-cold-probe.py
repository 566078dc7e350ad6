#!/usr/bin/env python3
"""What one small LoRA-sized matmul costs in libtorch on this machine, warm and cold: the same
[310, 576] x [576, 8] bf16 product (SmolLM2's o_proj A at a 310-token step) timed in a tight loop,
and as the first, second and third call after 3 ms of other work (a Python spin) or after a big
GEMM, as inside a training step. One JSON line per case, microseconds per call.

  /root/.cache/lorafit/venv/bin/python bench/mm-cold-probe.py [--threads 2]
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.randn(310, 576, dtype=torch.bfloat16)
    w = torch.randn(8, 576).to(torch.bfloat16)
    big = torch.randn(576, 3072, dtype=torch.bfloat16)

    def spin(seconds):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            pass

    def calls(before, reps=40, warm=10):
        totals = [0.0, 0.0, 0.0]
        for i in range(reps):
            before()
            ts = [time.perf_counter()]
            for _ in range(3):
                x @ w.t()
                ts.append(time.perf_counter())
            if i >= warm:
                for k in range(3):
                    totals[k] += ts[k + 1] - ts[k]
        return [round(t / (reps - warm) * 1e6, 1) for t in totals]

    cases = {"tight loop": lambda: None, "after 3 ms of Python": lambda: spin(0.003), "after a [310,576]x[576,3072] GEMM": lambda: x @ big}
    for name, before in cases.items():
        first, second, third = calls(before)
        print(json.dumps({"bench": "mm_cold_probe", "shape": [310, 576, 8], "dtype": "bfloat16", "threads": a.threads, "case": name,
                          "us_first": first, "us_second": second, "us_third": third, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
