"""A compressor added as one file runs through every algorithm that takes one (real ranks)."""
import pytest

pytestmark = pytest.mark.timeout(300)


def test_one_file_compressor_through_every_algorithm(ranks):
    out = ranks("plugin_compressor.py", np=2)
    assert out.count(": OK") == 2
    for algorithm in ("qsparse", "qsparse-async", "doublesqueeze", "risgd"):
        assert out.count(f"{algorithm} topk+ternary: loss") == 2, out
