"""The benchmark's overview across settings: one row per setting, read back from results.json."""
import json
from dataclasses import asdict

import pytest

from hvd_qsparse.bench.overview import load_settings, main, overview_section
from hvd_qsparse.bench.report import Row
from hvd_qsparse.bench.variants import BASELINE


def row(name, family, algorithm, accuracy, target_s, reduction=1.0):
    return Row(name, family, algorithm, score=accuracy, steps=10, epochs=1, bits=1000, reduction=reduction,
               wall_s=12.0, train_s=10.0, compress_s=1.0, communicate_s=2.0, target_s=target_s, target_step=5,
               target_bits=500)


SETTING = [row(BASELINE, "peer", BASELINE, 0.97, 30.0), row("ddp-powersgd", "peer", "ddp-powersgd", 0.97, 8.0),
           row("hvd-fp16", "peer", "hvd-fp16", 0.97, 15.0),
           row("qsparse-fast", "ours", "qsparse", 0.90, 2.0, reduction=5000),      # too inaccurate to be best
           row("qsparse-good", "ours", "qsparse", 0.965, 4.0, reduction=1200),
           row("gdsec-xi10", "ours", "gdsec", 0.94, None)]                           # 3 pt below dense


def test_a_row_per_setting_with_the_best_qsparse_and_the_fastest_peer():
    text = overview_section({"1gbit-np4": {"rows": SETTING}, "100mbit-np2": {"rows": SETTING[:3]}})
    lines = text.splitlines()
    assert lines[0] == "## Overview" and len([ln for ln in lines if ln.startswith("| 1")]) == 2
    full = next(ln for ln in lines if ln.startswith("| 1gbit-np4"))
    cells = [c.strip() for c in full.strip("|").split("|")]
    assert cells == ["1gbit-np4", "30.0", "ddp-powersgd 8.0", "qsparse-good", "4.0", "7.50×", "2.00×", "1200×",
                     "-0.50 pt", "6 of 7"]                      # missed: gdsec's accuracy
    no_ours = next(ln for ln in lines if ln.startswith("| 100mbit-np2"))
    assert "ddp-powersgd 8.0" in no_ours and "qsparse" not in no_ours


def test_several_results_files_merge_and_the_later_one_wins(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"1gbit-np4": {"ranks": 4, "rows": [asdict(r) for r in SETTING[:1]]},
                                 "10gbit-np4": {"ranks": 4, "rows": [asdict(r) for r in SETTING]}}))
    second.write_text(json.dumps({"1gbit-np4": {"ranks": 4, "rows": [asdict(r) for r in SETTING]}}))
    settings = load_settings([str(first), str(second)])
    assert list(settings) == ["1gbit-np4", "10gbit-np4"] and len(settings["1gbit-np4"]["rows"]) == len(SETTING)
    assert main([str(first), str(second)]) == 0
    assert capsys.readouterr().out.count("qsparse-good") == 2


def test_an_unreadable_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{\"x\": {\"rows\": [{\"nope\": 1}]}}")
    with pytest.raises(SystemExit) as exc:
        main([str(bad)])
    assert exc.value.code == 2 and "cannot read the results" in capsys.readouterr().err
