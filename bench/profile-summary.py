#!/usr/bin/env python3
"""Sums a libtorch chrome trace (LORAFIT_PROFILE_STEP=N LORAFIT_PROFILE_FILE=trace.json) by op:
self time (an op's time minus the ops it called) and call count, the largest first.

  python3 bench/profile-summary.py trace.json [--top 20]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace", nargs="+")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    for path in a.trace:
        data = json.load(open(path))
        events = data if isinstance(data, list) else data.get("traceEvents", [])
        events = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: (e.get("tid"), e["ts"], -e["dur"]))
        self_us, calls, stack = collections.Counter(), collections.Counter(), []
        for e in events:
            while stack and (stack[-1].get("tid") != e.get("tid") or stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]):
                stack.pop()
            if stack:
                self_us[stack[-1]["name"]] -= e["dur"]
            self_us[e["name"]] += e["dur"]
            calls[e["name"]] += 1
            stack.append(e)
        span = (max(e["ts"] + e["dur"] for e in events) - min(e["ts"] for e in events)) / 1000 if events else 0
        print(f"{path}: span {span:.1f} ms (profiler overhead included)")
        for name, us in self_us.most_common(a.top):
            print(f"  {us / 1000:9.1f} ms  {calls[name]:6d}  {name}")


if __name__ == "__main__":
    main()
