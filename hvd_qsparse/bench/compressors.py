"""Real payload bits and compress/decompress time of every compressor on one tensor.

``python -m hvd_qsparse.bench.compressors [--numel 1048576] [--ratio 0.01] [--levels 256]``
prints one row per compressor: payload bits, the analytic figure, the reduction against dense
fp32, and the median wall time of compress (with error feedback's decode) over repeats.
"""
import argparse

import torch

from hvd_qsparse.comm.link import median_seconds
from hvd_qsparse.compression import available, create


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=1 << 20)
    parser.add_argument("--ratio", type=float, default=0.01)
    parser.add_argument("--levels", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = torch.randn(args.numel, generator=torch.Generator().manual_seed(0))
    dense = 32 * args.numel
    print(f"d={args.numel} float32, ratio={args.ratio}, levels={args.levels}, threads={args.threads}, "
          f"median of {args.repeats}")
    print(f"{'compressor':<12} {'real bits':>11} {'analytic':>11} {'real/analytic':>13} {'vs fp32':>9} "
          f"{'compress ms':>11} {'decompress ms':>13}")
    for name in available():
        comp = create(name, ratio=args.ratio, levels=args.levels)
        payload, ctx = comp.compress(x, seed=1)
        real = payload.numel() * payload.element_size() * 8
        analytic = comp.analytic_bits(args.numel)
        t_c = median_seconds(lambda: comp.compress(x, seed=1), args.repeats)
        t_d = median_seconds(lambda: comp.decompress(payload, ctx), args.repeats)
        print(f"{name:<12} {real:>11} {analytic:>11} {real / analytic:>13.4f} {dense / real:>8.1f}x "
              f"{1e3 * t_c:>11.2f} {1e3 * t_d:>13.2f}")


if __name__ == "__main__":
    main()
