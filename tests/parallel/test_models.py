"""The job's models and machines under real ranks: BatchNorm buffers, mixed precision, fusion."""
import json
import sys

import pytest

from conftest import mpirun_command, run_command, run_ranks

pytestmark = pytest.mark.timeout(400)


@pytest.mark.parametrize("algorithm,local_steps", [("qsparse", 1), ("qsparse", 3), ("qsparse", 4), ("risgd", 3),
                                                   ("risgd", 4), ("doublesqueeze", 1), ("gdsec", 1)])
def test_buffers_identical_across_ranks_after_every_sync(algorithm, local_steps):
    out = run_ranks("buffer_sync.py", 2, [algorithm, local_steps, 1])
    assert out.count("OK") == 2, out


def test_untracked_buffers_stay_per_rank():
    out = run_ranks("buffer_sync.py", 2, ["qsparse", 1, 0])
    assert out.count("OK") == 2, out


def run_job(tmp_path, name, *flags):
    out = tmp_path / f"{name}.json"
    run_command(mpirun_command(2, [sys.executable, "-m", "hvd_qsparse.jobs.train", "--no-progress",
                                   "--json", str(out), *flags]), timeout=360)
    return json.loads(out.read_text())


def test_bf16_autocast_trains_as_fp32_does(tmp_path):
    flags = ("--epochs", "10", "--compressor", "topk+sign", "--local-steps", "2")
    fp32 = run_job(tmp_path, "fp32", *flags)
    bf16 = run_job(tmp_path, "bf16", *flags, "--amp", "bf16")
    print(f"fp32 {fp32['test_accuracy']:.4f} bf16 {bf16['test_accuracy']:.4f}")
    assert fp32["test_accuracy"] > 0.85
    assert bf16["test_accuracy"] >= fp32["test_accuracy"] - 0.03
    assert bf16["bits_per_rank"] == fp32["bits_per_rank"]  # autocast changes compute, not the wire


def test_fp16_gradscaler_job_trains(tmp_path):
    summary = run_job(tmp_path, "fp16", "--epochs", "10", "--compressor", "topk+sign", "--local-steps", "1",
                      "--amp", "fp16")
    assert summary["test_accuracy"] > 0.85


def test_fused_and_per_tensor_compression_reach_the_same_accuracy(tmp_path):
    flags = ("--epochs", "15", "--compressor", "topk+sign", "--ratio", "0.05", "--local-steps", "1")
    fused = run_job(tmp_path, "bucket", *flags, "--fusion", "bucket")
    alone = run_job(tmp_path, "tensor", *flags, "--fusion", "tensor")
    print(f"bucket {fused['test_accuracy']:.4f} bits {fused['bits_per_rank']}; "
          f"tensor {alone['test_accuracy']:.4f} bits {alone['bits_per_rank']}")
    assert min(fused["test_accuracy"], alone["test_accuracy"]) > 0.88
    assert abs(fused["test_accuracy"] - alone["test_accuracy"]) <= 0.02
    ratio = max(fused["bits_per_rank"]) / max(alone["bits_per_rank"])
    assert 0.8 < ratio < 1.2, ratio  # the same k overall, a few index bits more per entry


def test_resnet_job_keeps_ranks_on_one_model(tmp_path):
    summary = run_job(tmp_path, "resnet", "--model", "resnet", "--epochs", "1", "--local-steps", "2",
                      "--compressor", "topk+sign", "--ratio", "0.05")
    assert summary["model"] == "resnet" and summary["score_spread"] == 0.0
    assert summary["parameters"] > 50_000 and summary["test_accuracy"] > 0.3
