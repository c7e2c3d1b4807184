"""Reading source values: times (zones, daylight saving, date-only, epoch ms), numbers, HTML."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.tools.importers.values import TimeSpec, parse_numbers, parse_times, strip_html


def test_date_only_is_the_last_second_of_the_day_even_when_midnight_does_not_exist() -> None:
    # 2017-10-15 00:00 never happened in São Paulo (clocks jumped to 01:00).
    times, bad = parse_times(
        pd.Series(["15-10-2017", "14-10-2017"]), TimeSpec("America/Sao_Paulo", "%d-%m-%Y", date_only=True)
    )
    local = times.dt.tz_convert("America/Sao_Paulo")
    assert not bad.any() and (local.dt.hour == 23).all() and local.dt.day.tolist() == [15, 14]


def test_a_date_in_utc_stays_on_its_own_day_in_the_orgs_zone() -> None:
    times, _ = parse_times(pd.Series(["2024-03-01"]), TimeSpec("Asia/Shanghai", date_only=True))
    assert times[0] == pd.Timestamp("2024-03-01 23:59:59", tz="Asia/Shanghai")


def test_offsets_naive_times_and_epoch_milliseconds() -> None:
    values = pd.Series(["2024-03-01T09:15:00.000Z", "2024-03-01 17:15:00", "1709284500000", "soon", None, ""])
    times, bad = parse_times(values, TimeSpec("Asia/Shanghai", epoch_ms=True))
    assert times[0] == times[1] == times[2] == pd.Timestamp("2024-03-01T09:15:00Z")
    assert bad.tolist() == [False, False, False, True, False, False]


def test_numbers_as_crms_write_them() -> None:
    values, bad = parse_numbers(pd.Series(["$22,700.00", "¥ 1,200", "50万", "1.2亿", "(300)", "abc", None]))
    assert values[:5].tolist() == [22700.0, 1200.0, 500000.0, 120000000.0, -300.0]
    assert bad.tolist() == [False] * 5 + [True, False] and np.isnan(values[6])


def test_html_notes_become_text() -> None:
    assert strip_html("<p>电话沟通&amp;报价</p><br><b>下一步</b>：演示&nbsp;") == "电话沟通&报价\n下一步：演示"
    assert strip_html("<p></p>") is None and strip_html(False if False else None) is None
