"""hvd.elastic.TorchState(model, optimizer=wrapper) through a real reset (horovodrun elastic, Gloo).

Both workers raise HorovodInternalError after step 5 (once): Horovod restores the last commit
(step 4: model, inner optimizer state and the algorithm's memories), shuts down and re-initialises,
syncs, and training goes on. The optimizer in the state is the same object afterwards, and the
final parameters equal an undisturbed run's (1e-6): the restore is exact.
"""
import horovod.torch as hvd
import torch
from common import batch, flat_params, make_model

import hvd_qsparse

STEPS, FAIL_AFTER = 8, 5
LOSS = torch.nn.CrossEntropyLoss()
INJECTED = []


def build():
    model = make_model()
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           model.named_parameters(), compressor="topk+sign", ratio=0.3)
    return model, opt


def one_step(model, opt, step):
    x, y = batch(hvd.rank(), step)
    opt.zero_grad()
    LOSS(model(x), y).backward()
    opt.step()


def main():
    hvd.init()
    model, opt = build()
    for step in range(STEPS):
        one_step(model, opt, step)
    undisturbed = flat_params(model)

    model, opt = build()
    state = hvd.elastic.TorchState(model=model, optimizer=opt, step=0)

    @hvd.elastic.run
    def train(state):
        while state.step < STEPS:
            one_step(state.model, state.optimizer, state.step)
            state.step += 1
            if state.step % 2 == 0:
                state.commit()
            if state.step == FAIL_AFTER and not INJECTED:
                INJECTED.append(state.step)
                raise hvd.HorovodInternalError("injected failure")

    train(state)
    assert INJECTED, "no reset happened"
    assert state.optimizer is opt, "the state holds another optimizer object after the reset"
    assert opt.step_count == STEPS, f"step count {opt.step_count} after restore and replay"
    diff = (flat_params(model) - undisturbed).abs().max().item()
    assert diff <= 1e-6, f"after the reset the run strays from the undisturbed one by {diff}"
    print(f"rank {hvd.rank()}: OK reset after step {INJECTED[0]}, max diff {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
