"""Ages, once for every service: who is a minor, and when a minor comes of age.

Ages count on the calendar of the operator's time zone (`CUMULO_TIME_ZONE`, the zone the
lifecycle's calendar uses): a birthday starts at local midnight. Someone born on 29 February
comes of age on 1 March in a common year (the day after 28 February, when the years are not
yet full). A guardian's link to a minor ends at that instant (`comes_of_age`), by itself:
auth says it in `account.created`, and every service holding the link stops honouring it then
without waiting for another event."""

from __future__ import annotations

import datetime as dt
import zoneinfo

ADULT_AGE = 18


def local_date(now: dt.datetime, time_zone: zoneinfo.ZoneInfo) -> dt.date:
    """The day it is in the operator's time zone."""
    return now.astimezone(time_zone).date()


def age_on(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def is_minor(born: dt.date, today: dt.date) -> bool:
    return age_on(born, today) < ADULT_AGE


def coming_of_age_day(born: dt.date) -> dt.date:
    """The first day on which someone born on `born` is an adult."""
    year = born.year + ADULT_AGE
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year: the years are full on 1 March
        return dt.date(year, 3, 1)


def comes_of_age(born: dt.date, time_zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant (UTC) a minor born on `born` becomes an adult: local midnight starting the
    18th birthday."""
    midnight = dt.datetime.combine(coming_of_age_day(born), dt.time(0), tzinfo=time_zone)
    return midnight.astimezone(dt.UTC)
