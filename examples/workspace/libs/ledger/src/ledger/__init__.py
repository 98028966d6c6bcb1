"""The library both services share: built into each service's layer from this workspace."""

from decimal import Decimal


def total(amounts):
    return str(sum((Decimal(str(a)) for a in amounts), Decimal("0")))
