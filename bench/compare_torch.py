#!/usr/bin/env python3
"""Side-by-side: torch.topk and streamtopk on the same logits, on this GPU.

For each shape: logits = torch.randn(batch, vocab, generator seeded 0) in the
chosen dtype; torch.topk is timed as an eager loop synchronised after every
call ("end-to-end"), as a plain loop with one synchronise at its end (calls
queue behind each other) and as CUDA-graph replay (GPU time); topk_benchmark
reads the same logits from a safetensors file, times itself (CUDA events for
GPU time, loops for end-to-end and plain-loop times) and writes its values/indices,
which are compared with torch's. Prints the seed's table with both columns.

With --sample: nanochat's sample_next_token (torch: topk, div, softmax,
multinomial, gather) against `topk_benchmark --sample` on the same logits:
per-call end-to-end times (synchronised loops), GPU times (torch: CUDA
events around an eager loop; ours: CUDA-graph replay), and a greedy check
(temperature 0: our tokens against torch.argmax).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from safetensors.torch import load_file, save_file

ROWS = [
    (1, 50304, 50), (1, 50304, 100), (1, 50304, 200), (4, 50304, 50),
    (16, 50304, 50), (32, 50304, 50), (32, 50304, 200),
    (64, 151936, 1024), (256, 262144, 50),
]
SAMPLE_ROWS = [(1, 50304, 50), (4, 50304, 50), (32, 50304, 50), (1, 50304, 200), (1, 50304, 0), (32, 50304, 0)]
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


BACK_TO_BACK = 20  # calls per graph of the back-to-back timing (as topk_benchmark's)


def graph_ms(fn, iters, calls=1):
    """GPU time per call of `fn` from CUDA-graph replays of a graph of `calls` calls."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(calls):
            fn()
    for _ in range(10):
        g.replay()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        g.replay()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / (iters * calls)


def host_ms(fn, iters, sync_each=True):
    """Per-call wall time of a loop of `fn`, synchronised after every call
    (end-to-end) or, with `sync_each=False`, once at its end (a plain loop:
    calls queue behind each other)."""
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
        if sync_each:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3 / iters


def events_ms(fn, iters):
    """GPU time per call of an eager loop of `fn`, by CUDA events around it."""
    for _ in range(3):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def device_context(args):
    """The floors of a graph-replayed kernel (a 1-element fill; one per
    graph, and back-to-back), the end-to-end floors of one call (torch: the
    fill in an eager loop; ours: a 1x64, k=1 top-k), the DRAM bandwidth of
    a plain 512 MiB device-to-device copy (bytes read + written per
    second), timed eagerly (a graph would run it on a copy engine), and of a
    read-only sum of 512 MiB."""
    iters = args.iters
    tiny = torch.empty(1, device="cuda")
    floor_ms = (graph_ms(lambda: tiny.fill_(0.0), iters), graph_ms(lambda: tiny.fill_(0.0), iters, BACK_TO_BACK))
    ours = run_ours(args, ["--batch", "1", "--vocab", "64", "--top-k", "1", "--iters", str(iters), "--json"])
    e2e_floor_ms = (host_ms(lambda: tiny.fill_(0.0), iters), ours["e2e_ms"], ours["enqueue_ms"])
    n = 512 << 20
    src, dst = torch.empty(n, dtype=torch.uint8, device="cuda"), torch.empty(n, dtype=torch.uint8, device="cuda")
    # Timed eagerly: captured in a graph, the copy becomes a memcpy node on
    # a copy engine, which on the H200 moved only ~2.75 TB/s against the
    # copy kernel's ~4.2 (BENCHMARKS.md v20).
    copy_ms = events_ms(lambda: dst.copy_(src), max(iters // 10, 10))
    x = torch.ones(n // 2, dtype=torch.bfloat16, device="cuda")
    read_ms = events_ms(lambda: x.sum(), max(iters // 10, 10))
    return floor_ms, e2e_floor_ms, 2 * n / (copy_ms * 1e-3) / 1e9, n / (read_ms * 1e-3) / 1e9


def time_torch(x, k, iters):
    eager_ms = host_ms(lambda: torch.topk(x, k), iters)
    graph = graph_ms(lambda: torch.topk(x, k), iters), graph_ms(lambda: torch.topk(x, k), iters, BACK_TO_BACK)
    return eager_ms, *graph, host_ms(lambda: torch.topk(x, k), iters, sync_each=False)


@torch.inference_mode()
def sample_next_token(logits, rng, temperature=1.0, top_k=None):
    """nanochat's sampling step (nanochat/engine.py)."""
    assert temperature >= 0.0, "temperature must be non-negative"
    if temperature == 0.0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    if top_k is not None and top_k > 0:
        k = min(top_k, logits.size(-1))
        vals, idx = torch.topk(logits, k, dim=-1)
        vals = vals / temperature
        probs = torch.nn.functional.softmax(vals, dim=-1)
        choice = torch.multinomial(probs, num_samples=1, generator=rng)
        return idx.gather(1, choice)
    logits = logits / temperature
    probs = torch.nn.functional.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=rng)


def run_ours(args, extra):
    proc = subprocess.run([args.bin, *extra], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit(f"topk_benchmark failed: {extra}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def record(args, results, row):
    """Keep a table row, and append it as a JSON line to --json-out if set."""
    results.append(row)
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(json.dumps(row) + "\n")


def seeded_logits(tmp, b, v, dtype):
    """`torch.randn` logits [b, v] (seed 0) on the GPU, and the safetensors file holding them."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(b, v, generator=gen, device="cuda", dtype=dtype)
    path = os.path.join(tmp, "logits.safetensors")
    save_file({"logits": x.cpu().contiguous()}, path)
    return x, path


def compare_sampling(args, rows, dtype):
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (b, v, k) in enumerate(rows):
            print(f"# [{i + 1}/{len(rows)}] sample batch={b} vocab={v} top_k={k or 'None'}", file=sys.stderr, flush=True)
            x, inp = seeded_logits(tmp, b, v, dtype)
            out = os.path.join(tmp, "tokens.safetensors")
            rng = torch.Generator(device="cuda").manual_seed(42)
            top_k = k if k > 0 else None
            step = lambda: sample_next_token(x, rng, 1.0, top_k)
            torch_e2e = host_ms(step, args.iters)
            torch_loop = host_ms(step, args.iters, sync_each=False)
            torch_gpu = events_ms(step, args.iters)
            common = ["--sample", "--input", inp, "--top-k", str(k), "--iters", str(args.iters), "--json"]
            ours = run_ours(args, common + ["--temperature", "1.0"])
            run_ours(args, common + ["--temperature", "0", "--output", out])
            greedy_equal = bool(torch.equal(load_file(out)["tokens"].cuda(), torch.argmax(x, dim=-1)))
            row = dict(mode="sample", batch=b, vocab=v, k=k, dtype=args.dtype, torch_e2e_ms=torch_e2e,
                       torch_gpu_ms=torch_gpu, torch_loop_ms=torch_loop, ours_loop_ms=ours["loop_ms"], ours_e2e_ms=ours["e2e_ms"], ours_gpu_ms=ours["gpu_ms"], ours_b2b_ms=ours["gpu_b2b_ms"],
                       greedy_equal=greedy_equal)
            record(args, results, row)
    print()
    print("| Batch | Vocab | top_k | dtype | nanochat torch end-to-end (ms) | torch GPU, eager events (ms) | streamtopk sampler end-to-end (ms) | streamtopk sampler GPU (ms) | streamtopk sampler GPU back-to-back (ms) | Speedup end-to-end | Speedup GPU | nanochat torch plain loop (ms) | streamtopk plain loop (ms) | Speedup plain loop | greedy = torch.argmax |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['batch']} | {r['vocab']:,} | {r['k'] or 'None'} | {r['dtype']} | {r['torch_e2e_ms']:.4f} | {r['torch_gpu_ms']:.4f} | "
              f"{r['ours_e2e_ms']:.4f} | {r['ours_gpu_ms']:.4f} | {r['ours_b2b_ms']:.4f} | {r['torch_e2e_ms'] / r['ours_e2e_ms']:.1f}x | "
              f"{r['torch_gpu_ms'] / r['ours_gpu_ms']:.1f}x | {r['torch_loop_ms']:.4f} | {r['ours_loop_ms']:.4f} | "
              f"{r['torch_loop_ms'] / r['ours_loop_ms']:.1f}x | {r['greedy_equal']} |")
    bad = [r for r in results if not r["greedy_equal"]]
    print(f"\ngreedy rows equal to torch.argmax: {len(results) - len(bad)}/{len(results)}")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/topk_benchmark", help="path of topk_benchmark")
    ap.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--rows", default="", help="'B,V,K;B,V,K' instead of the default matrix")
    ap.add_argument("--json-out", default="", help="also write every row as JSON lines here")
    ap.add_argument("--sample", action="store_true", help="compare nanochat's sampling step instead of top-k (K = 0: top_k None)")
    args = ap.parse_args()
    rows = [tuple(int(x) for x in r.split(",")) for r in args.rows.split(";")] if args.rows else (SAMPLE_ROWS if args.sample else ROWS)
    dtype = DTYPES[args.dtype]
    dev = torch.cuda.get_device_name()
    print(f"# device: {dev}; torch {torch.__version__}; dtype {args.dtype}; iters {args.iters}", flush=True)
    if args.sample:
        return compare_sampling(args, rows, dtype)

    floor_ms, e2e_floor_ms, copy_gbps, read_gbps = device_context(args)
    floor = (f"one-kernel graph replay floor {floor_ms[0]:.4f} ms (back-to-back {floor_ms[1]:.4f} ms); "
             f"end-to-end floor: torch fill_ {e2e_floor_ms[0]:.4f} ms, ours 1x64 k=1 {e2e_floor_ms[1]:.4f} ms "
             f"(host enqueue {e2e_floor_ms[2]:.4f} ms); plain copy (512 MiB, read + write) {copy_gbps:.0f} GB/s; "
             f"read-only sum (512 MiB) {read_gbps:.0f} GB/s")
    print(f"# {floor}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (b, v, k) in enumerate(rows):
            print(f"# [{i + 1}/{len(rows)}] batch={b} vocab={v} k={k}", file=sys.stderr, flush=True)
            x, inp = seeded_logits(tmp, b, v, dtype)
            out = os.path.join(tmp, "topk.safetensors")
            eager_ms, torch_graph_ms, torch_b2b_ms, torch_loop_ms = time_torch(x, k, args.iters)
            tv, ti = torch.topk(x, k)
            proc = subprocess.run(
                [args.bin, "--input", inp, "--output", out, "--top-k", str(k), "--iters", str(args.iters), "--json", "--profile"],
                capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                raise SystemExit(f"topk_benchmark failed on batch={b} vocab={v} k={k}")
            ours = json.loads(proc.stdout.strip().splitlines()[-1])
            res = load_file(out)
            ov, oi = res["values"].cuda(), res["indices"].cuda()
            diff = (ov - tv.float()).abs()
            both_nan = torch.isnan(ov) & torch.isnan(tv.float())
            max_diff = float(torch.where(both_nan, torch.zeros_like(diff), diff).max())
            idx_equal = bool(torch.equal(oi, ti))
            gbps = b * v * x.element_size() / (ours["gpu_ms"] * 1e-3) / 1e9
            row = dict(batch=b, vocab=v, k=k, dtype=args.dtype, torch_eager_ms=eager_ms, torch_graph_ms=torch_graph_ms,
                       torch_b2b_ms=torch_b2b_ms, torch_loop_ms=torch_loop_ms, ours_loop_ms=ours["loop_ms"], ours_e2e_ms=ours["e2e_ms"], ours_gpu_ms=ours["gpu_ms"],
                       ours_b2b_ms=ours["gpu_b2b_ms"], stage1_ms=ours.get("stage1_ms"),
                       stage2_ms=ours.get("stage2_ms"), max_diff=max_diff, indices_equal=idx_equal, gbps=gbps,
                       chunks=ours["chunks"], pool=ours["pool"])
            record(args, results, row)

    print()
    print("| Batch | Vocab | Top-k | dtype | torch eager (ms) | torch graph GPU (ms) | torch GPU back-to-back (ms) | streamtopk end-to-end (ms) | streamtopk GPU (ms) | streamtopk GPU back-to-back (ms) | Speedup GPU (torch graph / ours) | Speedup GPU back-to-back | Speedup end-to-end (torch eager / ours) | torch plain loop (ms) | streamtopk plain loop (ms) | Speedup plain loop | stage-2 share | read GB/s | max \\|diff\\| | indices equal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        share = r["stage2_ms"] / (r["stage1_ms"] + r["stage2_ms"]) if r["stage1_ms"] else float("nan")
        print(f"| {r['batch']} | {r['vocab']:,} | {r['k']} | {r['dtype']} | {r['torch_eager_ms']:.4f} | {r['torch_graph_ms']:.4f} | "
              f"{r['torch_b2b_ms']:.4f} | {r['ours_e2e_ms']:.4f} | {r['ours_gpu_ms']:.4f} | {r['ours_b2b_ms']:.4f} | "
              f"{r['torch_graph_ms'] / r['ours_gpu_ms']:.2f}x | {r['torch_b2b_ms'] / r['ours_b2b_ms']:.2f}x | "
              f"{r['torch_eager_ms'] / r['ours_e2e_ms']:.2f}x | {r['torch_loop_ms']:.4f} | {r['ours_loop_ms']:.4f} | "
              f"{r['torch_loop_ms'] / r['ours_loop_ms']:.2f}x | {100 * share:.0f}% | {r['gbps']:.0f} | {r['max_diff']:.3e} | {r['indices_equal']} |")
    bad = [r for r in results if r["max_diff"] != 0 or not r["indices_equal"]]
    slower = [r for r in results if r["ours_gpu_ms"] >= r["torch_graph_ms"]]
    print(f"\nexact rows: {len(results) - len(bad)}/{len(results)}; faster than torch (GPU): {len(results) - len(slower)}/{len(results)}")
    print(floor)
    for r in results:
        if r["batch"] * r["vocab"] * torch.empty(0, dtype=dtype).element_size() >= 32 << 20:
            print(f"  {r['batch']}x{r['vocab']} k={r['k']}: reads at {r['gbps']:.0f} GB/s = {100 * r['gbps'] / copy_gbps:.0f}% of the copy's, "
                  f"{100 * r['gbps'] / read_gbps:.0f}% of the sum's")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
