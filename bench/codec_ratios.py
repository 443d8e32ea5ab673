#!/usr/bin/env python3
"""Prints seal/raw and open/raw CPU-time ratios from nomq_bench_codec's JSON output.

  build/nomq_bench_codec --benchmark_repetitions=5 --benchmark_format=json | bench/codec_ratios.py

Uses the median of the repetitions when there are several, else the single run.
"""
import json
import sys


def main() -> int:
    runs = json.load(sys.stdin)["benchmarks"]
    medians = {r["run_name"]: r["cpu_time"] for r in runs if r.get("aggregate_name") == "median"}
    if not medians:
        medians = {r["run_name"]: r["cpu_time"] for r in runs if r.get("run_type") == "iteration"}
    print(f"{'operation':<28}{'codec ns':>10}{'raw ns':>10}{'ratio':>8}")
    for size in (64, 256, 1024):
        rows = [("seal", f"BM_Seal_Codec/{size}", f"BM_Seal_Raw/{size}"),
                ("open (known channel)", f"BM_Open_Codec/{size}/1", f"BM_Open_Raw/{size}"),
                ("open (name hashed)", f"BM_Open_Codec/{size}/0", f"BM_Open_Raw/{size}")]
        for label, codec, raw in rows:
            if codec in medians and raw in medians:
                ratio = medians[codec] / medians[raw]
                print(f"{label + ' ' + str(size) + ' B':<28}{medians[codec]:>10.0f}"
                      f"{medians[raw]:>10.0f}{ratio:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
