"""``--verify`` values: the three modes pass through, anything else is refused (not read as "size")."""

from __future__ import annotations

import pytest

from sedscale.campaign.resume import VERIFY_MODES, parse_verify
from sedscale.errors import ConfigError


@pytest.mark.parametrize("mode", ["none", "size", "checksum"])
def test_each_verify_mode_is_accepted(mode: str) -> None:
    assert parse_verify(mode) == mode
    assert mode in VERIFY_MODES


def test_a_misspelt_verify_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="none, size, checksum.*'checksums'"):
        parse_verify("checksums")
