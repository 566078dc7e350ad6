#!/usr/bin/env python3
"""Sums a libtorch chrome trace (LORAFIT_PROFILE_STEP=N LORAFIT_PROFILE_FILE=trace.json) by op:
self time (an op's time minus the ops it called) and call count, the largest first. With --shapes,
ops are keyed by name and input shapes, and 2-D matmuls (aten::mm/addmm, and lorafit::onednn_mm,
the fp32 frozen GEMMs of native/cpu_matmul.cc) get their GFLOP/s.

  python3 bench/profile-summary.py trace.json [--top 20] [--shapes]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace", nargs="+")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--shapes", action="store_true", help="key ops by name and input shapes")
    a = ap.parse_args()
    for path in a.trace:
        data = json.load(open(path))
        events = data if isinstance(data, list) else data.get("traceEvents", [])
        events = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: (str(e.get("tid")), float(e["ts"]), -float(e["dur"])))
        self_us, calls, flop, stack = collections.Counter(), collections.Counter(), collections.Counter(), []

        def key(e):
            dims = e.get("args", {}).get("Input Dims")
            return f"{e['name']} {dims}" if a.shapes and dims else e["name"]

        for e in events:
            while stack and (stack[-1].get("tid") != e.get("tid") or stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]):
                stack.pop()
            if stack:
                self_us[key(stack[-1])] -= e["dur"]
            k = key(e)
            self_us[k] += e["dur"]
            calls[k] += 1
            flop[k] += matmul_flop(e)
            stack.append(e)
        span = (max(e["ts"] + e["dur"] for e in events) - min(e["ts"] for e in events)) / 1000 if events else 0
        print(f"{path}: span {span:.1f} ms (profiler overhead included)")
        for name, us in self_us.most_common(a.top):
            rate = f"{flop[name] / us / 1e3:7.1f} GFLOP/s" if flop[name] and us > 0 else " " * 15
            print(f"  {us / 1000:9.1f} ms  {calls[name]:6d} {rate}  {name}")


def matmul_flop(e):
    """2 m k n for aten::mm and lorafit::onednn_mm [m, k] x [k, n] and aten::addmm (bias, [m, k], [k, n]); else 0."""
    dims = e.get("args", {}).get("Input Dims") or []
    if e["name"] == "aten::addmm" or e["name"] == "aten::addmm_":
        dims = dims[1:3]
    elif e["name"] not in ("aten::mm", "lorafit::onednn_mm"):
        return 0
    if len(dims) >= 2 and len(dims[0]) == 2 and len(dims[1]) == 2:
        (m, k), (_, n) = dims[:2]
        return 2 * m * k * n
    return 0


if __name__ == "__main__":
    main()
