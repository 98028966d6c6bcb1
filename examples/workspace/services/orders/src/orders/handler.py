import orjson
from ledger import total


def handler(event, context):
    return orjson.dumps({"total": total(event.get("amounts", []))}).decode()
