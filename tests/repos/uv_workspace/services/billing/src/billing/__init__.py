from ledger import balance


def handler(event, context):
    return balance(event)
