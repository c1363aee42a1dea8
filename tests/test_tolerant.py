"""Reading untrusted vendor bodies: keep what is valid, drop what is not, never raise."""

from pydantic import BaseModel, ConfigDict

from gateway.states import State
from gateway.tolerant import lenient, never_raises, read_status, status_string


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


def test_read_status_maps_exactly_and_everything_else_is_unknown():
    table = {"Running": State.RUNNING}
    assert read_status({"status": "Running"}, table) == ("Running", State.RUNNING)
    assert read_status({"status": "running"}, table) == ("running", State.UNKNOWN)  # case counts
    assert read_status({"status": 5}, table) == (None, State.UNKNOWN)
    assert read_status(["Running"], table) == (None, State.UNKNOWN)
    assert read_status({"job": {"state": "Running"}}, table, "job.state") == ("Running", State.RUNNING)
    assert read_status({"job": "Running"}, table, "job.state") == (None, State.UNKNOWN)


def test_never_raises_reads_the_status_where_the_vendor_puts_it():
    @never_raises(status_field="state")
    def broken(body):
        raise KeyError("bug")

    assert broken({"state": "busy"}).vendor_status == "busy"
    assert broken({"state": "busy"}).state is State.UNKNOWN
