import pytest
from hypothesis import given
from hypothesis import strategies as st

from memview.units import UnitError, format_bytes, format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    "text,value", [("800MB", 800_000_000), ("2GiB", 2 * 2**30), ("512", 512), ("1.5 KiB", 1536), ("0.5gb", 500_000_000)]
)
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "MB", "12XB", "-5MB", "1e9"])
def test_parse_size_rejects_with_a_clear_error(text):
    with pytest.raises(UnitError, match="size"):
        parse_size(text)


def test_durations_and_formatting():
    assert parse_duration("250ms") == 0.25 and parse_duration("2m") == 120 and parse_duration("0.05") == 0.05
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(None) == "-"
    assert format_duration(75) == "01:15" and format_duration(3725) == "1:02:05"


@given(st.text(max_size=30))
def test_any_text_is_a_size_or_a_clear_error(text):
    try:
        value = parse_size(text)
    except UnitError as exc:
        assert "size" in str(exc)
    else:
        assert isinstance(value, int) and value >= 0


@given(st.text(max_size=30))
def test_any_text_is_a_duration_or_a_clear_error(text):
    try:
        value = parse_duration(text)
    except UnitError as exc:
        assert "duration" in str(exc)
    else:
        assert value >= 0
