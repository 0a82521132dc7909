"""One run of the algorithms on the Horovod or the torch.distributed backend, for the parity
test: ``backend_parity.py horovod|torch OUT``. Each setting trains STEPS steps from the same
seed and batches; rank r writes ``OUT.r`` with each setting's parameters and bit counts, and the
torch run also checks an exact resume. With ``torch``, Horovod is hidden before anything is
imported, so the run proves the torch path does not need it."""
import sys

if __name__ == "__main__" and sys.argv[1:2] == ["torch"]:
    for name in ("horovod", "horovod.torch", "horovod.common", "horovod.common.elastic"):
        sys.modules[name] = None  # `import horovod...` now raises ImportError

import torch  # noqa: E402
from common import flat_params, make_model, train_steps  # noqa: E402

import hvd_qsparse  # noqa: E402
from hvd_qsparse import load_checkpoint, save_checkpoint  # noqa: E402

STEPS = 6
SETTINGS = {
    "qsparse-identity-allreduce": dict(algorithm="qsparse", compressor="none", local_steps=1, exchange="allreduce"),
    "qsparse-topk+sign-H2": dict(algorithm="qsparse", compressor="topk+sign", ratio=0.1, local_steps=2),
    "qsparse-randk+qsgd-H3": dict(algorithm="qsparse", compressor="randk+qsgd", ratio=0.2, levels=4, local_steps=3),
    "qsparse-topk-sharded": dict(algorithm="qsparse", compressor="topk", ratio=0.2, local_steps=1, exchange="sharded"),
    "qsparse-fp16-dense": dict(algorithm="qsparse", compressor="fp16", local_steps=2, exchange="allreduce"),
    "doublesqueeze-topk+sign": dict(algorithm="doublesqueeze", compressor="topk+sign", ratio=0.2),
    "gdsec": dict(algorithm="gdsec", beta=0.5, xi=0.01),
    "risgd-topk": dict(algorithm="risgd", compressor="topk", ratio=0.3, local_steps=2),
}


def build(setting, backend):
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), backend=backend, **setting)
    return model, opt


def run(setting, backend, rank):
    model, opt = build(setting, backend)
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, STEPS)
    opt.load_synchronized_model()
    return {"params": flat_params(model), "sent": opt.bits.total_sent, "received": opt.bits.total_received}


def resume_is_exact(out, rank):
    """3 steps, a checkpoint, 3 more in a fresh optimizer: the parameters of 6 straight steps."""
    setting = SETTINGS["qsparse-topk+sign-H2"]
    model, opt = build(setting, "torch")
    opt.broadcast_state()
    train_steps(model, opt, rank, 0, 3)
    save_checkpoint(f"{out}.ckpt.{rank}", model, opt)
    model, opt = build(setting, "torch")
    load_checkpoint(f"{out}.ckpt.{rank}", model, opt)
    train_steps(model, opt, rank, opt.step_count, 3)
    opt.load_synchronized_model()
    return flat_params(model)


def main():
    backend, out = sys.argv[1], sys.argv[2]
    if backend == "torch":
        torch.distributed.init_process_group("gloo")
        rank = torch.distributed.get_rank()
    else:
        import horovod.torch as hvd
        hvd.init()
        rank = hvd.rank()
    torch.set_num_threads(1)
    results = {name: run(setting, backend, rank) for name, setting in SETTINGS.items()}
    if backend == "torch":
        results["resumed"] = resume_is_exact(out, rank)
        try:
            build(dict(algorithm="qsparse-async", compressor="topk", ratio=0.1), "torch")
        except ValueError as error:
            assert "needs Horovod running on MPI" in str(error), str(error)
        else:
            raise AssertionError("qsparse-async ran without MPI")
        assert "horovod" not in {m.split(".")[0] for m, v in sys.modules.items() if v is not None}
        torch.distributed.destroy_process_group()
    torch.save(results, f"{out}.{rank}")
    print(f"rank {rank} ({backend}): OK", flush=True)


if __name__ == "__main__":
    main()
