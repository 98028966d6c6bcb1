"""A handler that uses the layer's dependencies (pydantic and orjson from the uv layer)."""

import orjson
from pydantic import BaseModel


class Greeting(BaseModel):
    name: str


def handler(event, context):
    greeting = Greeting(name=event.get("name", "world"))
    return {"statusCode": 200, "body": orjson.dumps({"hello": greeting.name}).decode()}
