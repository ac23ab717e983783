"""Working-day arithmetic on a calendar with holidays and make-up days."""
from datetime import date

import pytest

from services.common.workdays import WorkCalendar, expand

# 2026 National Day: 10-01..10-07 off, Saturday 10-10 worked instead;
# Sunday 09-20 worked before it.
CAL = WorkCalendar(holidays=["2026-10-01..2026-10-07"], workdays=["2026-09-20", "2026-10-10"])


def test_days_across_a_holiday_and_a_make_up_working_day():
    # Wed 09-30 + 1 working day skips the whole holiday to Thu 10-08
    assert CAL.add(date(2026, 9, 30), 1) == date(2026, 10, 8)
    # Fri 10-09 + 1 is the make-up Saturday 10-10, + 2 the Monday after
    assert CAL.add(date(2026, 10, 9), 1) == date(2026, 10, 10)
    assert CAL.add(date(2026, 10, 9), 2) == date(2026, 10, 12)
    # Friday 09-18 + 1 is the make-up Sunday 09-20
    assert CAL.add(date(2026, 9, 18), 1) == date(2026, 9, 20)
    # backwards too
    assert CAL.add(date(2026, 10, 8), -1) == date(2026, 9, 30)
    assert CAL.between(date(2026, 9, 30), date(2026, 10, 12)) == 4  # 10-08, 09, 10, 12
    assert CAL.between(date(2026, 10, 12), date(2026, 9, 30)) == -4


def test_zero_days_and_months_roll_on_to_a_working_day():
    assert CAL.add(date(2026, 10, 3), 0) == date(2026, 10, 8)
    assert CAL.add(date(2026, 10, 10), 0) == date(2026, 10, 10)
    # 3 months after 07-01 is 10-01, a holiday: due on 10-08
    assert CAL.add_months(date(2026, 7, 1), 3) == date(2026, 10, 8)
    # month ends are clamped
    assert CAL.add_months(date(2026, 11, 30), 3) == date(2027, 3, 1)  # 02-28 is a Sunday
    assert CAL.due(date(2026, 9, 30), {"working_days": 5}) == date(2026, 10, 13)


@pytest.mark.parametrize("days", range(-40, 41, 7))
def test_add_and_between_agree(days):
    start = date(2026, 9, 29)
    assert CAL.between(start, CAL.add(start, days)) == days


def test_ranges_and_bad_entries():
    assert len(expand(["2026-10-01..2026-10-07", "2026-10-03"])) == 7
    with pytest.raises(ValueError):
        expand(["2026-10-07..2026-10-01"])
    with pytest.raises(ValueError):
        expand(["2026-13-01"])


def test_years_without_holiday_data_are_reported():
    cal = WorkCalendar(holidays=["2026-01-01", "2026-10-01..2026-10-07"])
    assert cal.uncovered_years(date(2026, 1, 1)) == []
    assert cal.uncovered_years(date(2026, 11, 26)) == [2027]
    assert WorkCalendar().uncovered_years(date(2026, 11, 26)) == [2026, 2027]
