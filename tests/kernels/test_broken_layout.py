"""The host checks catch a wrong bit layout: the harness built with ``QSPARSE_BREAK_LAYOUT``
(values placed at mirrored bit offsets) fails the same comparisons the real one passes."""
import pytest
import torch

from . import checks


def test_a_broken_bit_layout_fails_the_packing_check(broken_harness):
    codes = torch.arange(9, dtype=torch.int64) % 8
    with pytest.raises(AssertionError, match="pack of 9 codes at width 3"):
        checks.check_pack(broken_harness, codes, 3)


def test_a_broken_bit_layout_fails_the_sign_and_feedback_checks(broken_harness):
    x = checks.make_input("normal", 1003)
    with pytest.raises(AssertionError, match="sign bits"):
        checks.check_sign(broken_harness, x)
    with pytest.raises(AssertionError, match="topk\\+sign error feedback"):
        checks.check_feedback(broken_harness, "topk+sign", x, torch.zeros_like(x), 0.1)


def test_the_same_checks_pass_with_the_real_layout(harness):
    checks.check_pack(harness, torch.arange(9, dtype=torch.int64) % 8, 3)
    checks.check_sign(harness, checks.make_input("normal", 1003))
