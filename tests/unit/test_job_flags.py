"""Every flag and config value is checked before any rank trains: a usage error (exit code 2)
naming the flag (and the config file and line), never a traceback or a silently ignored flag."""
import pytest

from hvd_qsparse.jobs.train import parse_args


def usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["--algorithm", "doublesqueeze", "--local-steps", "8"], "--local-steps: not used by --algorithm doublesqueeze"),
    (["--algorithm", "gdsec", "--compressor", "randk"], "--compressor: not used by --algorithm gdsec"),
    (["--algorithm", "gdsec", "--ratio", "0.1", "--levels", "4"], "--levels, --ratio: not used by --algorithm gdsec"),
    (["--algorithm", "qsparse", "--beta", "0.5"], "--beta: not used by --algorithm qsparse"),
    (["--algorithm", "qsparse", "--server-layout", "ps"], "--server-layout: not used by --algorithm qsparse"),
    (["--algorithm", "doublesqueeze", "--redundancy", "2"], "--redundancy: not used by --algorithm doublesqueeze"),
])
def test_a_flag_the_algorithm_does_not_use_is_refused(argv, needle, capsys):
    assert needle in usage_error(argv, capsys)


@pytest.mark.parametrize("argv", [
    ["--algorithm", "doublesqueeze", "--compressor", "sign", "--server-layout", "ps"],
    ["--algorithm", "gdsec", "--xi", "5", "--always-sparse"],
    ["--algorithm", "risgd", "--exchange", "allgather", "--redundancy", "2", "--local-steps", "8"],
    ["--algorithm", "qsparse-async", "--window-host-rank", "1", "--local-steps", "8"],
    ["--algorithm", "qsparse", "--compressor", "topk+qsgd", "--levels", "4", "--ratio", "0.1", "--exchange", "allgather"],
])
def test_flags_an_algorithm_uses_are_accepted(argv):
    assert parse_args(argv).options


@pytest.mark.parametrize("argv,needle", [
    (["--lr", "inf"], "--lr must be a finite number > 0.0, got inf"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr", "0"], "--lr must be a finite number > 0.0"),
    (["--momentum", "nan"], "--momentum must be a finite number in [0.0, 1.0]"),
    (["--momentum", "1.5"], "--momentum must be a finite number in [0.0, 1.0]"),
    (["--straggler-sleep", "inf"], "--straggler-sleep must be a finite number >= 0.0"),
    (["--levels", str(2 ** 62)], "--levels must be at most 2**30"),
    (["--hidden", "2147483647"], "--hidden must be at most 65536"),
    (["--tensorboard", "tb"], "--tensorboard writes the --metrics rows"),
    (["--json", "/nonexistent-folder/run.json"], "--json /nonexistent-folder/run.json: the folder"),
    (["--bits-log", "/nonexistent-folder/bits.jsonl"], "--bits-log"),
])
def test_out_of_range_values_are_usage_errors(argv, needle, capsys):
    assert needle in usage_error(argv, capsys)


def test_an_output_path_that_is_a_folder_is_refused(tmp_path, capsys):
    assert "is a folder" in usage_error(["--json", str(tmp_path)], capsys)


def write(tmp_path, name, text, binary=False):
    path = tmp_path / name
    path.write_bytes(text) if binary else path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name,text,needle", [
    ("run.yaml", "algorithm: risgd\nnon-iid: \"false\"\n", "line 2: non-iid must be true or false, got 'false'"),
    ("run.toml", 'algorithm = "risgd"\nnon_iid = "false"\n', "line 2: non_iid must be true or false"),
    ("run.yaml", "ratio: [0.1, 0.2]\n", "line 1: ratio takes one number"),
    ("run.yaml", "compressor: topk\n  ratio: 0.1\n", "not valid YAML"),
    ("run.toml", "ratio = \n", "not valid TOML"),
    ("run.yaml", "ratio: 1.5\n", "(set by --config"),
])
def test_config_values_are_typed_and_errors_name_file_and_line(tmp_path, capsys, name, text, needle):
    path = write(tmp_path, name, text)
    err = usage_error(["--config", path], capsys)
    assert needle in err and path in err, err


def test_a_binary_config_names_the_file(tmp_path, capsys):
    path = write(tmp_path, "run.yaml", b"\xff\xfe\x00garbage\x9c", binary=True)
    err = usage_error(["--config", path], capsys)
    assert path in err and "not a text file" in err


def test_a_typed_flag_wins_over_the_file_and_takes_its_blame(tmp_path, capsys):
    path = write(tmp_path, "run.yaml", "ratio: 0.2\n")
    err = usage_error(["--config", path, "--ratio", "2"], capsys)
    assert "--ratio" in err and "set by --config" not in err
    assert parse_args(["--config", path, "--ratio", "0.3"]).ratio == 0.3


def test_yaml_booleans_set_switches(tmp_path):
    path = write(tmp_path, "run.yaml", "algorithm: risgd\nnon-iid: true\nno-progress: false\n")
    args = parse_args(["--config", path])
    assert args.non_iid is True and args.no_progress is False
