"""Device handling that must hold on a CPU-only machine too: the step timer's clock, the
optimizer state sent by ``broadcast_state`` (CPU tensors only), and the one-sided window's
paths (CPU tensors in place; tensors off the host through its staging buffer, exercised here
on CPU tensors by a window that stages everything). The CUDA side is in ``tests/gpu``."""
import time

import horovod.torch as hvd
import numpy as np
import pytest
import torch
from torch import nn

from hvd_qsparse.comm import FlatLayout, Window
from hvd_qsparse.optim import StepTimer
from hvd_qsparse.optim.state_format import map_tensors, optimizer_state_for_broadcast


@pytest.fixture(scope="module", autouse=True)
def horovod():
    hvd.init()  # one rank (MPI for the windows); never shut down


def test_timer_uses_a_host_clock_unless_made_for_an_available_gpu():
    assert not StepTimer().uses_events and not StepTimer("cpu").uses_events
    assert StepTimer("cuda").uses_events == torch.cuda.is_available()
    timer = StepTimer()
    timer.device = "cuda:0"  # decided again when the device is set later
    assert timer.uses_events == torch.cuda.is_available()


def test_timer_for_parameters_takes_the_first_parameters_device():
    assert StepTimer.for_parameters(nn.Linear(2, 2).parameters()).device == torch.device("cpu")
    assert StepTimer.for_parameters([]).device is None


def test_timer_adds_nested_and_repeated_phases_and_pop_clears():
    timer = StepTimer("cpu")
    for _ in range(2):
        with timer.phase("communicate"), timer.phase("compress"):
            time.sleep(0.01)
    seconds = timer.pop()
    assert set(seconds) == {"communicate", "compress"}
    assert seconds["communicate"] >= seconds["compress"] >= 0.02
    assert timer.pop() == {}


def test_map_tensors_keeps_the_structure_and_passes_the_nearest_key():
    tree = {"a": torch.ones(1), "b": [torch.zeros(2), (3, torch.ones(3))], "c": "text", 4: None}
    keys = []
    out = map_tensors(tree, lambda tensor, key: keys.append(key) or tensor * 2)
    assert keys == ["a", "b", "b"]
    assert out["c"] == "text" and out[4] is None and out["b"][1][0] == 3
    assert isinstance(out["b"], list) and isinstance(out["b"][1], tuple)
    assert torch.equal(out["b"][1][1], torch.full((3,), 2.0))


def sgd_with_state():
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    return opt


def test_state_for_broadcast_holds_cpu_tensors_equal_to_the_state():
    opt = sgd_with_state()
    sent = optimizer_state_for_broadcast(opt)
    state = opt.state_dict()
    assert sent["param_groups"] == state["param_groups"] and sent["state"].keys() == state["state"].keys()
    tensors = []
    map_tensors(sent, lambda tensor, _: tensors.append(tensor))
    assert len(tensors) == 2 and all(t.device.type == "cpu" for t in tensors)
    for key, entry in state["state"].items():
        # a CPU tensor is sent as it is, not copied
        assert sent["state"][key]["momentum_buffer"] is entry["momentum_buffer"]


class StagingWindow(Window):
    """Takes every tensor through the staging buffer, as a GPU tensor would be."""

    def _stages(self, tensor) -> bool:
        return isinstance(tensor, torch.Tensor)


def window_traffic(window_class):
    """Put, a sparse and a dense accumulate, a counter and a fetch in one epoch; returns the
    fetched vector, the bytes reported and the window (freed)."""
    window = window_class(FlatLayout([("x", (10,))]), host_rank=0, counters=1)
    try:
        with window.lock(exclusive=True):
            window.put(torch.arange(10.0))
            window.set_counters([0])
        out = torch.zeros(10)
        with window.lock():
            sent = window.accumulate(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1, 4, 9], dtype=torch.int32))
            sent += window.accumulate(torch.ones(10))
            window.add_counter(0, 5)
            received = window.fetch(out)
            count = window.add_counter(0, 0)
        return out, (sent, received, int(count[0])), window
    finally:
        window.free()


def test_staged_window_traffic_equals_the_in_place_one():
    expected = torch.arange(10.0) + 1
    expected[[1, 4, 9]] += torch.tensor([1.0, 2.0, 3.0])
    in_place, in_place_bytes, plain = window_traffic(Window)
    staged, staged_bytes, staging = window_traffic(StagingWindow)
    assert torch.equal(in_place, expected) and torch.equal(staged, expected)
    assert in_place_bytes == staged_bytes == (3 * 4 + 3 * 4 + 10 * 4, 10 * 4, 5)
    assert plain._staging is None, "CPU tensors went through the staging buffer"
    assert staging._staging.numel() == 2 * 10  # fp32 values, then int32 offsets
    assert staging._staging.is_pinned() == torch.cuda.is_available()


def test_cpu_tensors_reach_mpi_in_place():
    window = Window(FlatLayout([("x", (6,))]), host_rank=0)
    try:
        values = torch.arange(6.0)
        assert np.shares_memory(window._origin(values, torch.float32, part=0), values.numpy())
    finally:
        window.free()


def test_staging_refuses_a_tensor_larger_than_the_window():
    window = StagingWindow(FlatLayout([("x", (4,))]), host_rank=0)
    try:
        with window.lock(exclusive=True), pytest.raises(ValueError, match="5 entries does not fit the 4"):
            window.put(torch.zeros(5))
    finally:
        window.free()
