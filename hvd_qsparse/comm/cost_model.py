r"""What one exchange round costs a rank: bytes each way and time, from R, d, payloads and the link.

The α–β model of collectives (Thakur, Rabenseifner and Gropp, IJHPCA 2005), with a fixed cost
c per collective (Horovod's negotiation cycle) and a per-entry decoding cost γ: a ring or
pairwise collective over R ranks pays c plus (R − 1) latencies α, and a rank's link carries what
it receives at B bytes/s. The table's times leave out c: n_c·c is added, n_c the collectives
(1, 2 and 1). With P the bytes of one rank's compressed
payload (all its buckets), P_s those of the owners' replies (the sharded exchange's second
compression, P_s = P with the same operator) and k the entries a payload stands for:

================  ============================  ===============================================================
exchange          received per rank             time per round
================  ============================  ===============================================================
``allgather``     (R − 1)·P                     (R − 1)·α + (R − 1)·P/B + γ·(R·k + d)
``sharded``       (R − 1)·(P + P_s)/R           2(R − 1)·α + (R − 1)·(P + P_s)/(R·B) + γ·(2k + 2d/R + d)
``dense``         2(R − 1)/R · 4d               2(R − 1)·α + 2(R − 1)·4d/(R·B) + γ·2d
================  ============================  ===============================================================

(γ prices an entry touched: the allgather decodes every rank's k into d entries; an owner
decodes R payloads of k/R into its region's d/R, compresses that sum (d/R more), and every rank
decodes the R replies into d; the dense path decodes its own payload into d entries and gets d
back.) Sent bytes follow ``comm.accounting``: P, P + P_s/R and 4d. The figures are
what ``bench.scaling`` calibrates on measured runs and extrapolates to large R.
"""
from dataclasses import dataclass
from typing import Dict, Sequence

#: the exchanges the model prices (``exchange=auto`` chooses among them)
PRICED = ("allgather", "sharded", "dense")


@dataclass(frozen=True)
class Link:
    """A link as the α–β–γ model sees it.

    Attributes:
        latency_s: α, seconds per ring step of a collective.
        bytes_per_s: B, what one rank's link carries.
        decode_s: γ, seconds per entry decoded.
        collective_s: c, the fixed seconds of one collective.
    """

    latency_s: float
    bytes_per_s: float
    decode_s: float = 0.0
    collective_s: float = 0.0


@dataclass(frozen=True)
class Round:
    """One round's shape: R ranks, d entries, P and P_s bytes, k entries per payload."""

    ranks: int
    numel: int
    payload_bytes: int
    reply_bytes: int
    kept: int


def round_shape(ranks: int, numels: Sequence[int], compressor, reply=None) -> Round:
    """The ``Round`` of buckets of ``numels`` entries compressed by ``compressor``, the owners
    replying with ``reply`` (``compressor`` when None) over their regions."""
    reply = reply or compressor
    # k: the entries a payload stands for (a sparsifier's k; every entry for a quantizer)
    sparsifier = getattr(compressor, "sparsifier", None)
    return Round(ranks, sum(numels), sum(compressor.payload_nbytes(n) for n in numels),
                 sum(reply.payload_nbytes(-(-n // ranks)) for n in numels) * ranks,
                 sum(sparsifier.k(n) if sparsifier is not None else n for n in numels))


def received_bytes(kind: str, shape: Round) -> float:
    """Bytes reaching one rank in one round of ``kind``."""
    r, p, ps = shape.ranks, shape.payload_bytes, shape.reply_bytes
    return {"allgather": (r - 1) * p, "sharded": (r - 1) * (p + ps) / r,
            "dense": 2 * (r - 1) / r * 4 * shape.numel}[kind]


def sent_bytes(kind: str, shape: Round) -> float:
    """Bytes one rank hands to the collectives in one round of ``kind`` (``comm.accounting``)."""
    return {"allgather": shape.payload_bytes, "sharded": shape.payload_bytes + shape.reply_bytes / shape.ranks,
            "dense": 4 * shape.numel}[kind]


#: collectives per round
COLLECTIVES = {"allgather": 1, "sharded": 2, "dense": 1}


def terms(kind: str, shape: Round) -> tuple:
    """``(collectives, latencies, bytes through the link, entries decoded)`` of one round: time
    is their dot product with (c, α, 1/B, γ)."""
    r, k = shape.ranks, shape.kept
    steps = {"allgather": r - 1, "sharded": 2 * (r - 1), "dense": 2 * (r - 1)}[kind]
    d = shape.numel
    decoded = {"allgather": r * k + d, "sharded": 2 * k + 2 * d / r + d, "dense": 2 * d}[kind]
    return COLLECTIVES[kind], steps, received_bytes(kind, shape), decoded


def round_time(kind: str, shape: Round, link: Link) -> float:
    """Predicted seconds of one round of ``kind``."""
    collectives, steps, nbytes, decoded = terms(kind, shape)
    return (collectives * link.collective_s + steps * link.latency_s + nbytes / link.bytes_per_s
            + decoded * link.decode_s)


def predict(shape: Round, link: Link) -> Dict[str, float]:
    """Every priced exchange's round time."""
    return {kind: round_time(kind, shape, link) for kind in PRICED}


#: the factor by which ``sharded`` must beat the others before ``auto`` takes it: it adds a
#: second compression (a change to the algorithm), worth it only for a clear gain in time
SHARDED_MARGIN = 1.5


def choose(shape: Round, link: Link) -> str:
    """``exchange=auto``'s pick for a compressor that cannot be summed: the fastest of
    ``allgather`` and ``dense`` (the same sums), or ``sharded`` when it is ``SHARDED_MARGIN``
    times faster than both."""
    times = predict(shape, link)
    plain = min(("allgather", "dense"), key=times.get)
    return "sharded" if times["sharded"] * SHARDED_MARGIN < times[plain] else plain
