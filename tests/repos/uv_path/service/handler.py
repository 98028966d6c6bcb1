import acme_lib


def handler(event, context):
    return acme_lib.VERSION
