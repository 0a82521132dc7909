"""The wrapper as a drop-in for hvd.DistributedOptimizer, under real ranks (stock Horovod the reference)."""
import sys
from pathlib import Path

import pytest
from conftest import ROOT, WORKERS, run_command

pytestmark = pytest.mark.timeout(300)


def test_horovod_recipes_match_stock_horovod(ranks):
    out = ranks("dropin_recipes.py", np=2)
    assert out.count(": OK") == 2 and out.count("OneCycleLR max diff") == 2


@pytest.mark.parametrize("local_steps", [1, 4])
def test_grad_scaler_and_non_finite_gradients(ranks, local_steps):
    out = ranks("dropin_amp.py", np=2, args=(local_steps,))
    assert out.count(f": OK H={local_steps}") == 2 and out.count("refused with: rank 1") == 2


def test_parameter_dtypes_layouts_and_sparse_gradients(ranks):
    assert ranks("dropin_params.py", np=2).count(": OK") == 2


def test_state_dict_broadcast_optimizer_state_and_add_param_group(ranks):
    assert ranks("dropin_state.py", np=2).count(": OK") == 2


def test_model_differing_across_ranks_is_refused_everywhere(ranks):
    assert ranks("dropin_mismatch.py", np=2, timeout=200).count(": OK") == 2


def test_process_set(ranks):
    assert ranks("dropin_process_set.py", np=3).count(": OK") == 3


def test_join_with_uneven_batches(ranks):
    out = ranks("dropin_join.py", np=2)
    assert out.count(": OK") == 2 and out.count("gdsec after join OK") == 2


def test_elastic_torch_state_through_a_real_reset():
    cmd = [str(Path(sys.executable).parent / "horovodrun"), "--gloo", "-np", "2", "--min-np", "2", "--max-np", "2",
           "--host-discovery-script", str(ROOT / "launch" / "discover_hosts.sh"), "--network-interfaces", "lo",
           sys.executable, str(WORKERS / "dropin_elastic.py")]
    assert run_command(cmd, timeout=240).count("OK reset after step 5") == 2
