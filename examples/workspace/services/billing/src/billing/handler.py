from dateutil.parser import isoparse
from ledger import total


def handler(event, context):
    return {"due": isoparse(event["due"]).date().isoformat(), "total": total(event.get("amounts", []))}
