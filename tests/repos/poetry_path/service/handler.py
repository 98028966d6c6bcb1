import acme_common


def handler(event, context):
    return acme_common.NAME
