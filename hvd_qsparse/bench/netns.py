"""A network namespace whose loopback carries at most a given rate: real limited bandwidth on one machine.

Inside it (``ip netns exec``) every rank of a run talks over ``lo``; ``lo`` is brought up with
an MTU of 9000 and shaped by a token bucket, ``tc qdisc add dev lo root tbf rate R burst 1mb
latency 50ms`` (netem is not available here, and tbf's burst must exceed the MTU or traffic
stalls). The runs force OpenMPI and Gloo onto ``lo`` over TCP (``MPI_TCP_ARGS``,
``GLOO_SOCKET_IFNAME=lo``): with shared memory they would bypass the limit. All ranks share
the one shaped link, as ranks on one switch port would.

``python -m hvd_qsparse.bench.netns --rate 1gbit -- CMD...`` runs one command in such a
namespace; ``LimitedNamespace`` is the same as a context manager. Both need root (the
namespace and the queueing discipline are system-wide objects) and say so otherwise.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import List, Optional

#: OpenMPI over TCP on lo only (no shared memory, no other interface).
MPI_TCP_ARGS = ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]
UNLIMITED = "none"
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(kbit|mbit|gbit)$")
_BITS = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


class NamespaceError(RuntimeError):
    """The namespace cannot be set up here (not root, iproute2 missing, tc refused)."""


def check_rate(rate: str, flag: str = "--rate") -> str:
    """A tc rate such as ``100mbit``, ``1gbit``, ``10gbit`` (or ``none``: no limit).

    Raises:
        ValueError: anything else, naming ``flag`` and the accepted forms.
    """
    if rate == UNLIMITED or _RATE.match(rate):
        return rate
    raise ValueError(f"{flag}: {rate!r} is not a rate; accepted: a number followed by kbit, mbit or gbit "
                     f"(e.g. 100mbit, 1gbit, 10gbit) or {UNLIMITED!r} for no limit")


def rate_bits_per_s(rate: str) -> Optional[float]:
    """Bits per second of a checked rate (None for ``none``)."""
    if rate == UNLIMITED:
        return None
    number, unit = _RATE.match(rate).groups()
    return float(number) * _BITS[unit]


def check_can_create() -> None:
    """Raise ``NamespaceError`` with what to do when namespaces cannot be made here."""
    if os.geteuid() != 0:
        raise NamespaceError("limited bandwidth needs root: `ip netns add` and `tc qdisc` change system-wide "
                             "network state. Run as root (e.g. sudo -E bash launch/bench_compare.sh ...), or "
                             "pass --bandwidths none for runs without a limit")
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        raise NamespaceError(f"{' and '.join(missing)} not found: install iproute2 (apt-get install iproute2)")


class LimitedNamespace:
    """``with LimitedNamespace("1gbit") as ns: subprocess.run(ns.prefix + cmd)``.

    Creates ``hvdq-<pid>-<n>`` with ``lo`` up (MTU 9000) and shaped at ``rate``, and removes it
    on exit, also after an error. Processes still inside must be ended first (the caller
    started them, so the caller ends them).

    Args:
        rate: a tc rate (``check_rate``).
    """

    _count = 0

    def __init__(self, rate: str):
        self.rate = check_rate(rate)
        if self.rate == UNLIMITED:
            raise ValueError("LimitedNamespace needs a rate; run unlimited commands without a namespace")
        LimitedNamespace._count += 1
        self.name = f"hvdq-{os.getpid()}-{LimitedNamespace._count}"
        self.prefix: List[str] = ["ip", "netns", "exec", self.name]

    def __enter__(self) -> "LimitedNamespace":
        check_can_create()
        _ip("netns", "add", self.name)
        try:
            self.run("ip", "link", "set", "lo", "up", "mtu", "9000")
            self.run("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", self.rate, "burst", "1mb",
                     "latency", "50ms")
        except NamespaceError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, text=True, check=False)

    def run(self, *cmd: str) -> str:
        """Run ``cmd`` inside the namespace; its output, or ``NamespaceError`` with tc's/ip's message."""
        return _ip(*cmd, prefix=self.prefix)

    def sent_bytes(self) -> int:
        """Bytes the shaper has passed so far (``tc -s qdisc``): what shows that a run's traffic
        went through the limit rather than around it."""
        match = re.search(r"Sent (\d+) bytes", self.run("tc", "-s", "qdisc", "show", "dev", "lo"))
        return int(match.group(1)) if match else 0

    def describe(self) -> str:
        """``tc qdisc show dev lo`` inside the namespace (the shaping in force)."""
        return self.run("tc", "qdisc", "show", "dev", "lo").strip()


def _ip(*args: str, prefix: Optional[List[str]] = None) -> str:
    cmd = list(prefix) + list(args) if prefix else ["ip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NamespaceError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvd_qsparse.bench.netns", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", required=True, help="tc rate of lo, e.g. 100mbit, 1gbit, 10gbit")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... to run inside")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    try:
        if check_rate(args.rate) == UNLIMITED:
            parser.error("--rate: give a limit (none means no namespace: run the command directly)")
        with LimitedNamespace(args.rate) as ns:
            print(f"[netns] {ns.name}: {ns.describe()}", file=sys.stderr, flush=True)
            return subprocess.run(ns.prefix + command, check=False).returncode
    except ValueError as err:
        parser.error(str(err))
    except NamespaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
