"""Error-feedback compression throughput: the torch reference, our dispatched path, and the
``torch.topk`` pipeline peers use, side by side in one run.

``python -m hvd_qsparse.bench.kernels [--sizes 1M,25M,100M] [--ratios 0.1,0.01,0.001]
[--compressor topk+sign] [--devices cpu,cuda]`` (or ``bash launch/bench_kernels.sh``).

Every row times one error-feedback step on a float32 gradient of d entries:
``p = C(g + m); m ← g + m − D(p)``. The minimal traffic of that step is reading g and m and
writing m (12·d bytes; the payload is negligible), so "GB/s" is 12·d / time and "% copy" is that
figure over the device's measured copy bandwidth (a ``clone`` of a 4·d-byte tensor, 8·d bytes).

- ``reference``: ``ErrorFeedback`` with the torch reference ops (``HVD_QSPARSE_OPS=reference``);
- ``ours``: ``ErrorFeedback`` with the ops dispatch picks on the CPU (sampled top-k) and the CuPy
  kernels on CUDA (``HVD_QSPARSE_OPS=cupy``: they are opt-in elsewhere until verified);
- ``torch.topk``: GRACE-style: ``c = g + m; i = topk(|c|, k); v = Q(c[i]); m = c; m[i] -= v``.
"""
import argparse
import os
import statistics
import time
from contextlib import contextmanager

import torch

from hvd_qsparse.compression import create
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.ops import get_ops

SUFFIXES = {"K": 1 << 10, "M": 10 ** 6, "G": 10 ** 9}


def parse_size(text: str) -> int:
    """``25M`` → 25_000_000 (decimal, as model sizes are quoted), ``1048576`` as is."""
    text = text.strip().upper()
    if text[-1] in SUFFIXES:
        return int(float(text[:-1]) * SUFFIXES[text[-1]])
    return int(text)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def copy_bandwidth(device: torch.device, numel: int, repeats: int) -> float:
    """Bytes per second of a device-to-device copy (read + write)."""
    x = torch.empty(numel, dtype=torch.float32, device=device).fill_(1.0)
    return 8 * numel / time_it(x.clone, device, repeats)


@contextmanager
def ops_backend(name: str):
    """Use backend ``name`` (``reference``, ``cupy``, ``auto``) for the duration, through the
    same switch users have (``HVD_QSPARSE_OPS``)."""
    old = os.environ.get("HVD_QSPARSE_OPS")
    os.environ["HVD_QSPARSE_OPS"] = name
    try:
        yield
    finally:
        if old is None:
            del os.environ["HVD_QSPARSE_OPS"]
        else:
            os.environ["HVD_QSPARSE_OPS"] = old


def peer_pipeline(compressor):
    """The ``torch.topk`` + error-feedback pipeline as peers write it (quantizing the kept
    values with our quantizer, so the payload matches ours)."""
    quantizer = getattr(compressor, "quantizer", None)

    def step(grad, memory, k):
        compensated = grad + memory
        _, indices = torch.topk(compensated.abs(), k, sorted=False)
        values = compensated[indices]
        if quantizer is not None and quantizer.name != "none":
            payload, ctx = quantizer.compress(values, seed=1)
            values = quantizer.decompress(payload, ctx)
        compensated[indices] -= values
        return compensated
    return step


def bench_one(device, numel, ratio, name, repeats, copy_bps) -> dict:
    gen = torch.Generator(device=device).manual_seed(0)
    grad = torch.randn(numel, generator=gen, device=device)
    compressor = create(name, ratio=ratio)
    k = compressor.sparsifier.k(numel)
    ef = ErrorFeedback()
    ef.memory["g"] = torch.randn(numel, generator=gen, device=device).mul_(0.1)
    memory = ef.memory["g"].clone()
    ours = lambda: ef.compress("g", grad, compressor, seed=1)  # noqa: E731
    peer = peer_pipeline(compressor)
    times = {"torch.topk": time_it(lambda: peer(grad, memory, k), device, repeats)}
    with ops_backend("reference"):
        times["reference"] = time_it(ours, device, repeats)
    # on CUDA the kernels, even while they are opt-in (they are what this row measures)
    with ops_backend("cupy" if device.type == "cuda" else os.environ.get("HVD_QSPARSE_OPS", "auto")):
        times["ours"] = time_it(ours, device, repeats)
        backend = get_ops(grad).name
    return {"device": device.type, "numel": numel, "ratio": ratio, "backend": backend,
            "times": times, "gbps": {key: 12 * numel / t / 1e9 for key, t in times.items()},
            "copy_gbps": copy_bps / 1e9}


def format_row(row: dict) -> str:
    t, g = row["times"], row["gbps"]
    cols = " ".join(f"{1e3 * t[key]:>9.2f} {g[key]:>6.2f} {100 * g[key] / row['copy_gbps']:>5.1f}%"
                    for key in ("torch.topk", "reference", "ours"))
    return (f"{row['device']:<5} {row['numel']:>11,} {row['ratio']:>6g} {cols} "
            f"{t['torch.topk'] / t['ours']:>7.2f}x {t['reference'] / t['ours']:>7.2f}x  {row['backend']}")


HEADER = (f"{'dev':<5} {'d':>11} {'ratio':>6} " + " ".join(f"{key + ' ms':>9} {'GB/s':>6} {'%copy':>6}"
          for key in ("topk", "ref", "ours")) + f" {'vs topk':>8} {'vs ref':>7}  backend")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,25M,100M", help="comma-separated, K/M/G suffixes")
    parser.add_argument("--ratios", default="0.1,0.01,0.001")
    parser.add_argument("--compressor", default="topk+sign", help="a topk or topk+<quantizer> name")
    parser.add_argument("--devices", default="cpu,cuda", help="cuda rows are skipped without a GPU")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    if not args.compressor.startswith("topk"):
        parser.error(f"--compressor must be topk or topk+<quantizer>, got {args.compressor!r}")
    torch.set_num_threads(args.threads)
    devices = [torch.device(d) for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    if "cuda" in args.devices and not torch.cuda.is_available():
        print("no CUDA GPU here: cuda rows skipped")
    print(f"{args.compressor} with error feedback, float32, median of {args.repeats}, "
          f"{args.threads} CPU threads")
    print(HEADER)
    for device in devices:
        sizes = [parse_size(s) for s in args.sizes.split(",")]
        copy_bps = copy_bandwidth(device, max(sizes), args.repeats)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"# {name}: measured copy bandwidth {copy_bps / 1e9:.2f} GB/s")
        for numel in sizes:
            for ratio in (float(r) for r in args.ratios.split(",")):
                print(format_row(bench_one(device, numel, ratio, args.compressor, args.repeats, copy_bps)),
                      flush=True)


if __name__ == "__main__":
    main()
