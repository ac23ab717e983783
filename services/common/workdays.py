"""A working-day calendar kept as data: weekends, public holidays and the
make-up working days (调休上班) that fall on weekends.

Pure: no I/O. Each platform configures its own calendar, e.g.::

    calendar:
      weekend: [5, 6]                 # Monday = 0
      holidays: ["2025-10-01..2025-10-08", "2025-01-01"]
      workdays: ["2025-09-28", "2025-10-11"]
"""
import calendar as _calendar
from datetime import date, timedelta


def _parse_day(text):
    return date.fromisoformat(str(text).strip())


def expand(entries):
    """Dates from ``"YYYY-MM-DD"`` and ``"YYYY-MM-DD..YYYY-MM-DD"`` entries."""
    days = set()
    for entry in entries or ():
        text = str(entry)
        if ".." in text:
            first, last = (_parse_day(t) for t in text.split("..", 1))
            if last < first:
                raise ValueError(f"range ends before it starts: {text}")
            while first <= last:
                days.add(first)
                first += timedelta(days=1)
        else:
            days.add(_parse_day(text))
    return days


class WorkCalendar:
    def __init__(self, weekend=(5, 6), holidays=(), workdays=()):
        self.weekend = frozenset(int(d) for d in weekend)
        self.holidays = frozenset(expand(holidays))
        self.workdays = frozenset(expand(workdays))

    @classmethod
    def from_config(cls, conf):
        conf = conf or {}
        return cls(conf.get("weekend", (5, 6)), conf.get("holidays", ()),
                   conf.get("workdays", ()))

    def uncovered_years(self, today):
        """The years of the 12 months from ``today`` for which the calendar
        holds no public holiday: their 春节 and 国庆 would count as working
        days until the year's notice is entered."""
        covered = {d.year for d in self.holidays}
        end = today + timedelta(days=364)
        return [y for y in range(today.year, end.year + 1) if y not in covered]

    def is_working_day(self, day):
        if day in self.workdays:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays

    def add(self, start, days):
        """The working day ``days`` working days after ``start`` (before, if
        negative). ``add(d, 0)`` is ``d`` itself if it is a working day, else the
        next one."""
        step = 1 if days >= 0 else -1
        day = start
        if days == 0:
            while not self.is_working_day(day):
                day += timedelta(days=1)
            return day
        remaining = abs(days)
        for _ in range(abs(days) * 7 + 400):
            day += timedelta(days=step)
            if self.is_working_day(day):
                remaining -= 1
                if remaining == 0:
                    return day
        raise ValueError("calendar has no working days in reach")

    def between(self, start, end):
        """Working days after ``start`` up to and including ``end`` (negative
        when ``end`` is earlier)."""
        if end < start:
            return -self.between(end, start)
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count

    def add_months(self, start, months):
        """The same day ``months`` later (clamped to the month's end), moved on
        to the next working day."""
        month = start.month - 1 + months
        year, month = start.year + month // 12, month % 12 + 1
        last = _calendar.monthrange(year, month)[1]
        return self.add(date(year, month, min(start.day, last)), 0)

    def due(self, start, spec):
        """A due date from ``{"working_days": n}`` or ``{"months": n}``."""
        if "months" in spec:
            return self.add_months(start, int(spec["months"]))
        return self.add(start, int(spec["working_days"]))
