#!/usr/bin/env python3
"""The PyTorch side of `lumina bench moe`: a Mixtral-style MoE layer (the usual
per-expert loop) timed on lumina's layer shapes, forward and forward + backward.

Layer, for x (N, d):
    logits = x Wr^T (N, E);  p = softmax(logits) in f32;  (w, choice) = top-k of p;
    w = w / sum(w) (renormalised);  for each expert e: the (token, slot) pairs that
    chose e, h = silu(x_n W1_e^T) * (x_n W3_e^T), out_n += w_{n,slot} * h W2_e^T
    (index_add_). Dropless: no capacity.
FLOPs on routed tokens (lumina's convention): forward = 2 * N*k * 3 * d * ffn
+ 2 * N * d * E; forward + backward = 3 x forward.

Writes one JSON object per shape, one per line, to --json (status ok, skipped
or failed); a shape that runs out of memory is skipped ("out of memory").
Timed passes start with the gradients set to None (PyTorch's zero_grad
default); peak_bytes comes from one more pass with the gradients kept
allocated, as lumina keeps its own: weights + grads + that pass's activations
and temporaries.

    python3 bench/moe/torch_moe_loop.py --sizes small,medium --json out.jsonl
    /usr/bin/python3 bench/moe/torch_moe_loop.py --sizes tiny --device cpu --json out.jsonl
"""
import argparse
import gc
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# name: (experts, hidden, ffn, top_k, batch, seq); the same as lumina's moe_bench_shapes().
SHAPES = {
    "tiny": (8, 64, 128, 2, 4, 32),
    "small": (8, 1024, 4096, 2, 16, 256),
    "medium": (64, 4096, 14336, 4, 32, 512),
    "large": (256, 7168, 14336, 8, 32, 2048),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
INIT_STD = 0.02  # lumina's init_std; the down projection uses INIT_STD / sqrt(2) (one layer)


class MixtralMoe:
    """Router (E, d) and per-expert w1, w3 (ffn, d) and w2 (d, ffn), as torch.nn.Linear weights."""

    def __init__(self, experts, hidden, ffn, top_k, device, dtype, seed):
        gen = torch.Generator(device=device).manual_seed(seed)

        def weight(rows, cols, std):
            return torch.empty(rows, cols, device=device, dtype=dtype).normal_(0.0, std, generator=gen).requires_grad_()

        self.top_k = top_k
        self.router = weight(experts, hidden, INIT_STD)
        self.w1 = [weight(ffn, hidden, INIT_STD) for _ in range(experts)]
        self.w3 = [weight(ffn, hidden, INIT_STD) for _ in range(experts)]
        self.w2 = [weight(hidden, ffn, INIT_STD / 2**0.5) for _ in range(experts)]

    def parameters(self):
        return [self.router] + self.w1 + self.w3 + self.w2

    def forward(self, x):
        """out (N, d) and choice (N, k)."""
        experts = len(self.w1)
        probs = torch.softmax(F.linear(x, self.router), dim=-1, dtype=torch.float32)  # (N, E)
        weight, choice = torch.topk(probs, self.top_k, dim=-1)  # (N, k)
        weight = (weight / weight.sum(dim=-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x)
        chosen = F.one_hot(choice, num_classes=experts).permute(2, 1, 0)  # (E, k, N)
        for e in range(experts):
            slot, token = torch.where(chosen[e])
            if token.numel() == 0:
                continue
            xe = x[token]  # (n_e, d)
            h = F.silu(F.linear(xe, self.w1[e])) * F.linear(xe, self.w3[e])  # (n_e, ffn)
            out.index_add_(0, token, F.linear(h, self.w2[e]) * weight[token, slot, None])
        return out, choice


def is_out_of_memory(err):
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(err, oom)) or "out of memory" in str(err) or "can't allocate memory" in str(err)


def bench_shape(name, args, device, dtype):
    experts, hidden, ffn, top_k, batch, seq = SHAPES[name]
    row = {"shape": name, "experts": experts, "hidden": hidden, "ffn": ffn, "top_k": top_k, "batch": batch,
           "seq": seq, "device": device, "dtype": str(dtype).replace("torch.", "")}
    tokens = batch * seq
    params = experts * (3 * hidden * ffn + hidden)
    element_bytes = torch.empty((), dtype=dtype).element_size()
    floor_bytes = 2 * params * element_bytes  # weights + grads
    if args.memory_limit_gb > 0 and floor_bytes > args.memory_limit_gb * 1e9:
        row.update(status="skipped", reason=f"needs at least {floor_bytes / 1e9:.1f} GB for weights and grads, "
                                            f"more than --memory-limit-gb {args.memory_limit_gb}")
        return row
    cuda = device == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    layer = x = dout = None
    try:
        if cuda:
            torch.cuda.empty_cache()
        layer = MixtralMoe(experts, hidden, ffn, top_k, device, dtype, args.seed)
        gen = torch.Generator(device=device).manual_seed(args.seed + 1)
        x = torch.randn(tokens, hidden, device=device, dtype=dtype, generator=gen).requires_grad_()
        dout = torch.randn(tokens, hidden, device=device, dtype=dtype, generator=gen)
        params_list = layer.parameters()

        def timed_pass(backward):
            for p in params_list + [x]:
                p.grad = None  # PyTorch's zero_grad default: backward writes fresh gradients
            sync()
            t0 = time.perf_counter()
            out, choice = layer.forward(x)
            if backward:
                out.backward(dout)
            sync()
            return (time.perf_counter() - t0) * 1e3, choice

        for _ in range(args.warmup):
            timed_pass(True)
        fwd = [timed_pass(False)[0] for _ in range(args.iters)]
        fwd_bwd, choice = [], None
        for _ in range(args.iters):
            ms, choice = timed_pass(True)
            fwd_bwd.append(ms)
        # Memory of one more pass with the gradients kept allocated, as lumina keeps its own:
        # weights + grads + the pass's activations and temporaries.
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        out, _ = layer.forward(x)
        out.backward(dout)
        del out
        sync()
        load = torch.bincount(choice.flatten(), minlength=experts).tolist()
        forward_flops = 2.0 * tokens * top_k * 3 * hidden * ffn + 2.0 * tokens * hidden * experts
        fwd_bwd_median = statistics.median_high(fwd_bwd)
        row.update(
            status="ok",
            fwd_ms={"median": statistics.median_high(fwd), "min": min(fwd)},
            fwd_bwd_ms={"median": fwd_bwd_median, "min": min(fwd_bwd)},
            tokens_per_second=tokens / (fwd_bwd_median * 1e-3),
            tflops_fwd_bwd=3.0 * forward_flops / (fwd_bwd_median * 1e-3) / 1e12,
            kept=tokens * top_k,
            expert_load=load,
            weight_bytes=params * element_bytes,
            grad_bytes=params * element_bytes,
            peak_bytes=torch.cuda.max_memory_allocated() if cuda else -1,
        )
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        row.update(status="skipped", reason=f"out of memory ({str(err).splitlines()[0][:200]})")
    finally:
        del layer, x, dout
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="small,medium,large", help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--iters", type=int, default=10, help="timed passes of forward and of forward + backward")
    ap.add_argument("--warmup", type=int, default=3, help="untimed forward + backward passes first")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--dtype", default=None, choices=list(DTYPES), help="default: bfloat16 on cuda, float32 on cpu")
    ap.add_argument("--memory-limit-gb", type=float, default=0.0,
                    help="skip a shape whose weights and grads alone exceed this many GB (1e9 bytes); 0: no limit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", required=True, help="output file: one JSON object per shape, one per line")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SHAPES]
    if unknown or not sizes or args.iters < 1 or args.warmup < 0:
        ap.error(f"--sizes must name some of {', '.join(SHAPES)} (got {args.sizes!r}); --iters >= 1, --warmup >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no CUDA GPU; use --device cpu")
    dtype = DTYPES[args.dtype or ("bfloat16" if args.device == "cuda" else "float32")]
    print(f"torch {torch.__version__} on {args.device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if args.device == 'cuda' else ''}, {dtype}", flush=True)
    with open(args.json, "w") as out:
        for name in sizes:
            try:
                row = bench_shape(name, args, args.device, dtype)
            except Exception as err:  # one shape failing must not lose the others
                row = {"shape": name, "experts": SHAPES[name][0], "hidden": SHAPES[name][1], "ffn": SHAPES[name][2],
                       "top_k": SHAPES[name][3], "batch": SHAPES[name][4], "seq": SHAPES[name][5],
                       "status": "failed", "reason": f"{type(err).__name__}: {err}"}
            if row["status"] == "ok":
                print(f"{name} / torch_loop: fwd {row['fwd_ms']['median']:.3f} ms, "
                      f"fwd+bwd {row['fwd_bwd_ms']['median']:.3f} ms, {row['tflops_fwd_bwd']:.2f} TFLOP/s fwd+bwd",
                      flush=True)
            else:
                print(f"{name} / torch_loop: {row['status']}: {row['reason']}", flush=True)
            out.write(json.dumps(row) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
