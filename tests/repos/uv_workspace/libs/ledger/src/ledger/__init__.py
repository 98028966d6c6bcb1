from shared_util import money

FROM_THE_WORKSPACE = True


def balance(event):
    return money(sum(event.get("amounts", [])))
