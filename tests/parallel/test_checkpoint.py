"""Checkpoint files of another rank or another world size are refused on every rank (real ranks)."""
import pytest

pytestmark = pytest.mark.timeout(300)


def test_other_ranks_and_other_sizes_are_refused(ranks, tmp_path):
    assert ranks("checkpoint_ranks.py", np=2, args=("save", tmp_path)).count(": OK") == 2
    swapped = ranks("checkpoint_ranks.py", np=2, args=("swap", tmp_path))
    assert swapped.count(": refused: checkpoint") == 2 and swapped.count(": OK") == 2
    grown = ranks("checkpoint_ranks.py", np=3, args=("grow", tmp_path))
    assert grown.count("3 ranks") == 2 and grown.count(": OK") == 3
