"""Output files that are whole or absent: written to a temporary file beside the target,
flushed to disk, then renamed over it, so a crash or a signal mid-write leaves the previous
file (or none), never a truncated one that a reader would take for a result."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path: str, binary: bool = False):
    """Open ``path`` for writing so that it appears only once the block has finished cleanly.

    Args:
        binary: a bytes file (``"wb"``) instead of a text file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(handle, "wb" if binary else "w") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
