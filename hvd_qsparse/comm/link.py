"""The link as the ranks measure it: α, B and γ of ``comm.cost_model``, agreed on every rank.

Two allgathers time the link (a 1-byte buffer for the latency, ``probe_bytes`` per rank for
the bandwidth: its (R − 1) foreign segments over the extra time), and a local ``index_add_`` of
``probe_entries`` entries times decoding. Each is the median of ``repeats`` runs after one
warm-up; every rank takes the slowest rank's figures, so every rank makes the same choice.
The bandwidth probe is 64 KiB so that a slow link pays little for it (four transfers: about
2 s at 1 Mbit/s); on a fast link it mostly measures latency, where the choice hardly depends
on bandwidth anyway.
"""
import statistics
import time

import torch

from hvd_qsparse.comm.cost_model import Link


def median_seconds(run, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``run`` after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decode_seconds(entries: int = 1 << 20, repeats: int = 3) -> float:
    """γ: seconds per entry of a scatter-add into a dense vector, on this process's CPU."""
    out, index, values = torch.zeros(entries), torch.arange(entries), torch.ones(entries)
    return median_seconds(lambda: out.index_add_(0, index, values), repeats) / entries


def measure_link(comm, name: str, probe_bytes: int = 1 << 16, probe_entries: int = 1 << 20,
                 repeats: int = 3) -> Link:
    """The agreed ``Link`` of ``comm``'s ranks (collective: every rank calls it with one ``name``)."""
    ranks = comm.size
    if ranks == 1:
        return Link(latency_s=0.0, bytes_per_s=float("inf"))
    tiny, big = torch.zeros(1, dtype=torch.uint8), torch.zeros(probe_bytes, dtype=torch.uint8)
    serial = iter(range(1 << 30))
    small = median_seconds(lambda: comm.allgather(tiny, name=f"{name}.small.{next(serial)}"), repeats)
    large = median_seconds(lambda: comm.allgather(big, name=f"{name}.large.{next(serial)}"), repeats)
    decode = decode_seconds(probe_entries, repeats)
    mine = (small / (ranks - 1), (large - small) / ((ranks - 1) * probe_bytes), decode)
    latency, seconds_per_byte, decode = (max(column) for column in zip(*comm.allgather_object(mine, name=f"{name}.agree")))
    return Link(latency_s=latency, bytes_per_s=1.0 / max(seconds_per_byte, 1e-12), decode_s=decode)
