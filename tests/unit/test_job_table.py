"""The job tables' rows are commands the training job accepts, with the shared flags asked for."""
import pytest

from hvd_qsparse.bench.job_table import MODEL_FLAGS, TABLES, model_flags
from hvd_qsparse.jobs.train import parse_args


@pytest.mark.parametrize("table", sorted(TABLES))
@pytest.mark.parametrize("optimizer", ["auto", "sgd", "adamw"])
def test_every_row_is_a_valid_job_command(table, optimizer):
    for model in MODEL_FLAGS:
        for name, flags in TABLES[table]:
            args = parse_args([*model_flags(model, optimizer, None), *flags])
            assert args.model == model, name
            assert optimizer == "auto" or args.optimizer == optimizer, name  # auto resolves per model


def test_epochs_replace_the_models_count_and_the_first_row_is_dense():
    flags = model_flags("transformer", "sgd", 1)
    assert flags[flags.index("--epochs") + 1] == "1" and flags[-2:] == ["--optimizer", "sgd"]
    assert model_flags("mlp", "auto", None) == list(MODEL_FLAGS["mlp"])
    for rows in TABLES.values():
        assert rows[0][0] == "dense" and "none" in rows[0][1]
