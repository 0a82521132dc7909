"""NaN on one rank where values travel as they are (warm-up, summable compressors, model
averaging) is refused on every rank and never reaches the parameters (real ranks)."""
import pytest

pytestmark = pytest.mark.timeout(300)


def test_nan_in_dense_paths_is_refused_everywhere(ranks):
    out = ranks("non_finite_dense.py", np=2)
    assert out.count(": OK") == 2
    assert out.count("refused ") == 2 * 7, out
