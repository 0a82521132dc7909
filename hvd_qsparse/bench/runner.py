"""One benchmark run: a variant on R ranks under mpirun (or torchrun), in a limited namespace or not, with a timeout.

OpenMPI goes over TCP on ``lo`` (``netns.MPI_TCP_ARGS``) in every run, limited or not, so the
unlimited setting differs from the limited ones only by the rate; Gloo (the DDP peers) is
pinned to ``lo`` and meets at ``127.0.0.1`` on a free port. A run writes, under its setting's
folder, ``<variant>.json`` (the job's summary), ``<variant>.jsonl`` (per-step metrics) and
``<variant>.log`` (everything the ranks printed). A run that fails or outlives its timeout is
ended (its whole process group) and reported, and the benchmark goes on.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from hvd_qsparse.bench.netns import MPI_TCP_ARGS
from hvd_qsparse.bench.variants import Variant

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunResult:
    """Where a run's files are, and how it ended."""

    variant: Variant
    summary: Path
    metrics: Path
    log: Path
    seconds: float
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


def free_port() -> int:
    """A TCP port nobody listens on now (for Gloo's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_env(port: int) -> dict:
    """The ranks' environment: root allowed, one thread per rank, Gloo on lo, this tree importable."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
               PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH")))))
    return env


def _job_argv(variant: Variant, shared_flags: Sequence[str], out_dir: Path) -> List[str]:
    stem = out_dir / variant.name
    return ["-m", variant.module, *variant.flags, *shared_flags, "--label", variant.name,
            "--json", f"{stem}.json", "--metrics", f"{stem}.jsonl"]


def mpirun_command(variant: Variant, ranks: int, shared_flags: Sequence[str], out_dir: Path,
                   port: Optional[int] = None) -> List[str]:
    """``mpirun -np R ... python -m MODULE FLAGS`` for ``variant``, writing into ``out_dir``."""
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise RuntimeError("mpirun not found: run `bash launch/setup.sh` (installs Debian's OpenMPI)")
    return [mpirun, "-np", str(ranks), "--oversubscribe", "--bind-to", "none", *MPI_TCP_ARGS,
            sys.executable, *_job_argv(variant, shared_flags, out_dir)]


def torchrun_command(variant: Variant, ranks: int, shared_flags: Sequence[str], out_dir: Path,
                     port: Optional[int] = None) -> List[str]:
    """``torchrun --nproc_per_node R`` meeting at 127.0.0.1:``port`` (Gloo on ``lo``)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(ranks),
            "--master_addr", "127.0.0.1", "--master_port", str(port or free_port()),
            *_job_argv(variant, shared_flags, out_dir)]


def run_variant(variant: Variant, ranks: int, shared_flags: Sequence[str], out_dir: Path,
                prefix: Sequence[str] = (), timeout: float = 1800.0) -> RunResult:
    """Run ``variant`` on ``ranks`` ranks (inside ``prefix``, e.g. ``ip netns exec NAME``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / variant.name
    result = RunResult(variant, Path(f"{stem}.json"), Path(f"{stem}.jsonl"), Path(f"{stem}.log"), 0.0)
    for stale in (result.summary, result.metrics):
        stale.unlink(missing_ok=True)
    port = free_port()
    launch = torchrun_command if variant.launcher == "torchrun" else mpirun_command
    cmd = [*prefix, *launch(variant, ranks, shared_flags, out_dir, port)]
    start = time.perf_counter()
    with open(result.log, "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=run_env(port), cwd=str(ROOT),
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:   # timed out, or the benchmark itself is being stopped
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    result.seconds = time.perf_counter() - start
    if code is None:
        result.error = f"timed out after {timeout:.0f}s (see {result.log})"
    elif code != 0:
        result.error = f"exit code {code} (see {result.log})"
    elif not result.summary.exists() or not result.metrics.exists():
        result.error = f"no summary or metrics written (see {result.log})"
    return result
