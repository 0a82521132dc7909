"""``--config FILE``: YAML or TOML instead of flags, flags given as well win, bad keys refused."""
import pytest

from hvd_qsparse.jobs.train import parse_args


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_yaml_sets_flags_and_command_line_wins(tmp_path):
    path = write(tmp_path, "run.yaml", "compressor: topk+qsgd\nlocal-steps: 8\nratio: 0.02\nno_progress: true\n")
    args = parse_args(["--config", path, "--ratio", "0.1"])
    assert (args.compressor, args.local_steps, args.ratio, args.no_progress) == ("topk+qsgd", 8, 0.1, True)
    assert args.options["local_steps"] == 8


def test_toml_equivalent(tmp_path):
    path = write(tmp_path, "run.toml", 'compressor = "randk+sign"\nlocal_steps = 2\n')
    args = parse_args(["--config", path])
    assert (args.compressor, args.local_steps) == ("randk+sign", 2)


@pytest.mark.parametrize("name,text,needle", [
    ("bad.yaml", "nope: 1\n", "unknown key 'nope'; accepted:"),
    ("bad.yaml", "compressor: nope\n", "invalid choice: 'nope'"),
    ("bad.yaml", "ratio: 1.5\n", "--ratio"),
    ("bad.yaml", "- a\n- b\n", "expected a mapping"),
    ("bad.ini", "a=1\n", "--config must be a .yaml, .yml, .toml file"),
])
def test_bad_config_is_a_usage_error(tmp_path, capsys, name, text, needle):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--config", write(tmp_path, name, text)])
    assert exit_info.value.code == 2
    assert needle in capsys.readouterr().err


def test_missing_config_file_and_bad_metrics_suffix(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--config", str(tmp_path / "absent.yaml")])
    assert "absent.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--metrics", "run.txt"])
    assert "--metrics must end in .jsonl or .csv" in capsys.readouterr().err
