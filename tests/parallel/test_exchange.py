"""Compressed payloads cross real ranks (mpirun and horovodrun) and decode identically."""
import pytest

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("np", [2, 3])
def test_allgather_decode_mpirun(ranks, np):
    out = ranks("allgather_decode.py", np=np)
    assert out.count(": OK") == np


def test_allgather_decode_horovodrun(ranks):
    out = ranks("allgather_decode.py", np=2, launcher="horovodrun")
    assert out.count(": OK") == 2
