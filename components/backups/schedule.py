"""`services.backups.schedule`, a standard five-field cron expression (UTC), in the form each target runs it.

Accepted: per field `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, and comma lists of those (no names, no
`@daily`, no `L`/`W`/`?`: the same expression must mean the same thing on every target). As in cron, when both the
day of month and the day of week are restricted (neither starts with `*`), a day matching either runs; a stepped
`*/n` day field next to a restricted one is refused (cron implementations read it differently).

- Kubernetes: the CronJob's schedule, unchanged (`timeZone: Etc/UTC`).
- VMs: systemd `OnCalendar=` lines (`on_calendar`): each field expanded to its values, one line per day rule.
- compose: a scheduler loop that checks the expression every minute (`SHELL_MATCHER`, a POSIX sh function).
- AWS: an AWS Backup `cron(...)` expression (`aws_cron`): at most hourly, and one day rule (AWS has no "either").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KEY = "services.backups.schedule"
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_ITEM = re.compile(r"^(?:(\*|\d+-\d+)(/\d+)?|(\d+))$")  # `n/step` is refused: implementations differ
WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


class ScheduleError(ValueError):
    def __init__(self, expression: str, reason: str):
        super().__init__(f"{KEY}: {expression!r} {reason}")


@dataclass(frozen=True)
class Cron:
    expression: str
    fields: tuple[str, ...]  # minute, hour, day of month, month, day of week
    values: tuple[tuple[int, ...], ...]  # each field expanded (day of week: 0-6, Sunday 0)

    def restricted(self, index: int) -> bool:
        """Whether a field restricts (cron's rule: a field starting with `*` does not, for the day OR)."""
        return not self.fields[index].startswith("*")


def parse(expression: str) -> Cron:
    fields = tuple(expression.split())
    if len(fields) != 5:
        raise ScheduleError(expression, f"has {len(fields)} fields; expected 5 (minute hour day-of-month month "
                                        "day-of-week), e.g. '0 3 * * *'")
    values = []
    for text, (name, low, high) in zip(fields, FIELDS):
        found: set[int] = set()
        for item in text.split(","):
            match = _ITEM.match(item)
            if not match:
                raise ScheduleError(expression, f"has {item!r} in its {name} field; use *, n, a-b, */n or a-b/n "
                                                "(numbers, no names)")
            span, step = match.group(1) or match.group(3), int((match.group(2) or "/1")[1:])
            start, end = (low, high) if span == "*" else map(int, (span.split("-") * 2)[:2])
            if not low <= start <= end <= high or step < 1:
                raise ScheduleError(expression, f"has {item!r} in its {name} field, outside {low}-{high}")
            found.update(range(start, end + 1, step))
        if name == "day of week" and 7 in found:
            found = (found - {7}) | {0}
        values.append(tuple(sorted(found)))
    stepped = [fields[i] for i in (2, 4) if fields[i].startswith("*/") and fields[i] != "*/1"]
    if stepped and all(fields[i] != "*" for i in (2, 4)):
        raise ScheduleError(expression, f"combines {stepped[0]!r} with a restricted day field; cron "
                                        "implementations disagree on whether that means both days or either "
                                        "(write the days out, e.g. '1-31/2')")
    return Cron(expression, fields, tuple(values))


def _list(values: tuple[int, ...], every: tuple[int, ...], width: int = 2) -> str:
    return "*" if values == every else ",".join(f"{v:0{width}d}" for v in values)


def on_calendar(expression: str) -> list[str]:
    """systemd `OnCalendar=` values (UTC) that fire exactly when the cron expression does: one line, or two when
    cron would run on days matching either the day of month or the day of week (systemd ANDs them in one line)."""
    cron = parse(expression)
    minutes, hours, days, months, weekdays = cron.values
    time = f"{_list(hours, tuple(range(24)))}:{_list(minutes, tuple(range(60)))}:00"
    month = _list(months, tuple(range(1, 13)))
    day_list, names = _list(days, tuple(range(1, 32))), ",".join(WEEKDAYS[d] for d in weekdays)
    if cron.restricted(2) and cron.restricted(4):
        return [f"*-{month}-{day_list} {time} UTC", f"{names} *-{month}-* {time} UTC"]
    prefix = "" if weekdays == tuple(range(7)) else f"{names} "
    return [f"{prefix}*-{month}-{day_list} {time} UTC"]


def aws_cron(expression: str) -> str:
    """AWS Backup's `cron(minutes hours day-of-month month day-of-week year)` (UTC)."""
    cron = parse(expression)
    minutes, hours, days, months, weekdays = cron.values
    if len(minutes) > 1:
        raise ScheduleError(expression, "runs more than once an hour; AWS Backup runs a rule at most hourly")
    all_days, all_weekdays = days == tuple(range(1, 32)), weekdays == tuple(range(7))
    if not all_days and not all_weekdays:
        raise ScheduleError(expression, "restricts both the day of month and the day of week; AWS Backup's cron "
                                        "takes only one of them: restrict one, leave the other '*'")
    day = "*" if all_days else ",".join(map(str, days))
    weekday = "?" if all_weekdays else ",".join(WEEKDAYS[d].upper() for d in weekdays)
    if weekday != "?":
        day = "?"
    hour = "*" if hours == tuple(range(24)) else ",".join(map(str, hours))
    month = "*" if months == tuple(range(1, 13)) else ",".join(map(str, months))
    return f"cron({minutes[0]} {hour} {day} {month} {weekday} *)"


# `cron_matches "EXPRESSION" MINUTE HOUR DAY MONTH WEEKDAY` succeeds when the expression fires at that time; the
# values come from `date -u '+%-M %-H %-d %-m %w'`. The caller runs with `set -f` (no globbing of `*`).
SHELL_MATCHER = r'''
field_matches() {
  fm_value=$1 fm_min=$3 fm_max=$4
  fm_ifs=$IFS
  IFS=,
  for fm_item in $2; do
    IFS=$fm_ifs
    fm_step=1
    case $fm_item in */*) fm_step=${fm_item#*/} fm_item=${fm_item%/*} ;; esac
    case $fm_item in
      '*') fm_low=$fm_min fm_high=$fm_max ;;
      *-*) fm_low=${fm_item%-*} fm_high=${fm_item#*-} ;;
      *) fm_low=$fm_item fm_high=$fm_item ;;
    esac
    if [ "$fm_value" -ge "$fm_low" ] && [ "$fm_value" -le "$fm_high" ] &&
      [ $(((fm_value - fm_low) % fm_step)) -eq 0 ]; then
      IFS=$fm_ifs
      return 0
    fi
  done
  IFS=$fm_ifs
  return 1
}

cron_matches() {
  cm_minute=$2 cm_hour=$3 cm_day=$4 cm_month=$5 cm_weekday=$6
  # shellcheck disable=SC2086 # the expression's five fields
  set -- $1
  field_matches "$cm_minute" "$1" 0 59 || return 1
  field_matches "$cm_hour" "$2" 0 23 || return 1
  field_matches "$cm_month" "$4" 1 12 || return 1
  cm_by_day=0 cm_by_weekday=0
  if field_matches "$cm_day" "$3" 1 31; then cm_by_day=1; fi
  if field_matches "$cm_weekday" "$5" 0 7 || { [ "$cm_weekday" -eq 0 ] && field_matches 7 "$5" 0 7; }; then
    cm_by_weekday=1
  fi
  case "$3 $5" in
    '*'* | *' *'*) [ "$cm_by_day" -eq 1 ] && [ "$cm_by_weekday" -eq 1 ] ;;
    *) [ "$cm_by_day" -eq 1 ] || [ "$cm_by_weekday" -eq 1 ] ;;
  esac
}
'''
