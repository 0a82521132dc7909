"""The job's model, device and precision flags: per-model defaults, and flags a model or
optimizer does not read refused before any rank trains."""
import pytest
import torch

from hvd_qsparse.jobs.device import Precision, resolve_device
from hvd_qsparse.jobs.train import parse_args


def usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("model,optimizer,lr,batch", [("mlp", "sgd", 0.05, 32), ("resnet", "sgd", 0.05, 32),
                                                     ("transformer", "adamw", 0.002, 16)])
def test_each_model_gets_its_defaults(model, optimizer, lr, batch):
    args = parse_args(["--model", model])
    assert (args.optimizer, args.lr, args.batch_size) == (optimizer, lr, batch)


def test_given_values_win_over_the_model_defaults():
    args = parse_args(["--model", "transformer", "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "4"])
    assert (args.optimizer, args.lr, args.batch_size) == ("sgd", 0.1, 4)


@pytest.mark.parametrize("argv,needle", [
    (["--model", "resnet", "--hidden", "64"], "--hidden: only --model mlp reads it"),
    (["--model", "transformer", "--momentum", "0.5"], "--momentum: only --optimizer sgd reads it"),
    (["--model", "cnn"], "invalid choice: 'cnn'"),
    (["--amp", "fp8"], "invalid choice: 'fp8'"),
])
def test_flags_the_model_does_not_read_are_refused(argv, needle, capsys):
    assert needle in usage_error(argv, capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_device_cuda_without_a_gpu_is_a_usage_error(capsys):
    assert "--device cuda: no CUDA device is visible" in usage_error(["--device", "cuda"], capsys)


def test_auto_and_cpu_devices_resolve_to_the_cpu_here():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: auto picks it")
    assert resolve_device("auto", 0, 1) == resolve_device("cpu", 0, 1) == torch.device("cpu")


def test_fp16_precision_steps_through_a_gradscaler_and_bf16_autocasts():
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    half = Precision("fp16", torch.device("cpu"))
    assert half.scaler is not None
    before = model.weight.detach().clone()
    for _ in range(10):  # fp16 gradients overflow at the first scales: the scaler skips and backs off
        opt.zero_grad()
        with half.autocast():
            loss = model(torch.ones(3, 4)).float().sum()
        half.backward_and_step(loss, opt)
    assert half.scaler.get_scale() < 65536.0
    assert not torch.equal(before, model.weight)  # then an unscaled step was taken
    bf16 = Precision("bf16", torch.device("cpu"))
    with bf16.autocast():
        assert model(torch.ones(3, 4)).dtype == torch.bfloat16
    assert Precision("none", torch.device("cpu")).scaler is None
