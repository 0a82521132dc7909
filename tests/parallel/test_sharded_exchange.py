"""Qsparse's sharded exchange under real ranks (2, 3 and 4): the identity is the dense rule,
routing is exact, ranks agree after every sync, resume is exact with the owners' memories, and
every exchange counts its bytes both ways as its buffers' sizes."""
import pytest

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("np", [2, 3, 4])
def test_identity_is_dense_and_ranks_agree(ranks, np):
    assert ranks("sharded_identity.py", np=np, timeout=400).count(": OK") == np


@pytest.mark.parametrize("np", [2, 3, 4])
def test_every_region_reaches_its_owner_once_and_bytes_match_buffers(ranks, np):
    assert ranks("sharded_routing.py", np=np, timeout=300).count(": OK") == np


@pytest.mark.parametrize("np,compressor,local_steps", [(2, "topk", 1), (3, "topk+sign", 2), (4, "topk+bsign", 1)])
def test_resume_is_exact_with_the_owners_memories(ranks, tmp_path, np, compressor, local_steps):
    out = ranks("sharded_resume.py", np=np, args=(compressor, local_steps, tmp_path), timeout=300)
    assert out.count(": OK") == np
