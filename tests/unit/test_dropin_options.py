"""Horovod's keywords on the wrapper: accepted where they mean something, refused with a reason elsewhere."""
import horovod.torch as hvd
import pytest
import torch

import hvd_qsparse
from hvd_qsparse.optim import HorovodOptions


def model_and_sgd():
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


@pytest.fixture(scope="module", autouse=True)
def horovod():
    hvd.init()


def test_is_a_torch_optimizer_sharing_the_inner_objects():
    model, inner = model_and_sgd()
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), hvd.Compression.none)
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups is inner.param_groups and opt.state is inner.state and opt.defaults is inner.defaults
    torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    assert opt.algorithm_state.compressor.name == "none"


@pytest.mark.parametrize("compression,name", [(hvd.Compression.none, "none"), (hvd.Compression.fp16, "fp16"),
                                              ("topk+sign", "topk+sign")])
def test_compression_keyword(compression, name):
    model, inner = model_and_sgd()
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), compression=compression, ratio=0.5)
    assert opt.algorithm_state.compressor.name == name


@pytest.mark.parametrize("keywords,message", [
    (dict(op=hvd.Adasum), "Adasum"),
    (dict(op=hvd.Sum, gradient_predivide_factor=2.0), "gradient_predivide_factor not supported with op != Average"),
    (dict(backward_passes_per_step=0), "backward_passes_per_step must be an integer > 0"),
    (dict(groups="two"), "groups should be"),
    (dict(compression=object()), "compression must be"),
    (dict(compression="fp16", compressor="topk"), "compression= or compressor="),
    (dict(algorithm="gdsec", compression="topk"), "does not apply to algorithm 'gdsec'"),
    (dict(algorithm="doublesqueeze", groups=2), "groups=2 does not apply to algorithm 'doublesqueeze'"),
    (dict(algorithm="gdsec", gradient_predivide_factor=2.0), "gradient_predivide_factor=2.0 does not apply"),
    (dict(op="median"), "op must be"),
])
def test_refused_with_the_keyword_named(keywords, message):
    model, inner = model_and_sgd()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("+", r"\+")):
        hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), **keywords)


def test_global_process_set_given_explicitly_is_the_default():
    model, inner = model_and_sgd()
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), algorithm="qsparse-async",
                                           compressor="topk", ratio=0.5, process_set=hvd.global_process_set)
    assert opt.options.process_set is None
    hvd.broadcast_optimizer_state(opt, root_rank=0)
    assert opt.step_count == 0 and not opt.started, "broadcast_optimizer_state took an async step"
    with pytest.raises(ValueError, match="add_param_group is not supported"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))]})
    assert len(opt.param_groups) == 1, "the refused group reached the inner optimizer"
    opt.finish()


def test_groups_become_buckets():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    named = list(model.named_parameters())
    options = HorovodOptions(groups=[[model[0].weight, model[1].weight]])
    assert options.bucket_groups(named) == [["0.weight", "1.weight"], ["0.bias"], ["1.bias"]]
    assert HorovodOptions(groups=2).bucket_groups(named) == [["0.weight", "0.bias"], ["1.weight", "1.bias"]]


def test_methods_horovod_scripts_call():
    model, inner = model_and_sgd()
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), compressor="topk", ratio=0.5)
    opt.set_backward_passes_per_step(3)
    assert opt.buckets.passes == 3 and opt.backward_passes_per_step == 3
    with opt.skip_synchronize():
        assert not opt._should_synchronize
    assert opt._should_synchronize
    loss = opt.step(lambda: model(torch.ones(1, 3)).sum())
    assert loss is not None and opt.step_count == 1
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


def test_add_param_group_refuses_a_taken_name_before_the_inner_optimizer_sees_it():
    model, inner = model_and_sgd()
    opt = hvd_qsparse.DistributedOptimizer(inner, model.named_parameters(), compressor="topk", ratio=0.5)
    with pytest.raises(ValueError, match="already used"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "names": ["weight"]})
    assert len(opt.param_groups) == 1
