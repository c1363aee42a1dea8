"""Reading untrusted vendor bodies: keep what is valid, drop what is not, never raise."""

from pydantic import BaseModel, ConfigDict

from gateway.tolerant import lenient, status_string


class Item(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    score: float | None = None


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str | None = None
    count: int | None = None
    items: list[Item] = []


def test_invalid_values_are_dropped_and_the_rest_kept():
    got = lenient(Body, {"status": "ok", "count": "many", "items": [{"name": "a", "score": "x"}, {"score": 1}, 5]})
    assert got.status == "ok" and got.count is None
    assert [(i.name, i.score) for i in got.items] == [("a", None)]


def test_non_objects_and_absurd_nesting_give_none():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    for body in (None, [], "x", 3, [deep]):
        assert lenient(Body, body) is None
    assert lenient(Body, {"status": "ok", "extra": deep}) is None  # too deep to copy: nothing read, no raise


def test_status_string():
    assert status_string({"status": "done"}) == "done"
    assert status_string({"status": 5}) is None
    assert status_string(["status"]) is None
