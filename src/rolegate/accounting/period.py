"""Reading report periods: `7d`, `24h`, `30m` ago, an ISO date or date-time (UTC unless it says
otherwise), or epoch seconds."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_instant(text: str, now: float) -> float:
    """Epoch seconds for `text`; ValueError with a message naming the accepted forms."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - float(relative.group(1)) * _UNIT[relative.group(2)]
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise ValueError(f"{text!r} is not a finite time")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use 7d / 24h / 30m, an ISO date "
                         "(2025-01-31 or 2025-01-31T12:00:00Z) or epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
