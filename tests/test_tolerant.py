"""Reading untrusted vendor bodies: keep what is valid, drop what is not, never raise."""

from pydantic import BaseModel, ConfigDict

from gateway.states import State
from gateway.tolerant import lenient, never_raises, read_status, status_string
from providers.segment_qa.models import JobStatus


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
    # an unknown field is kept as given (never walked, never copied): the known fields are read, nothing raises
    got = lenient(Body, {"status": "ok", "extra": deep})
    assert got is not None and got.status == "ok"
    # absurd nesting where the model looks: that field is dropped, the rest is read
    got = lenient(Body, {"status": "ok", "items": deep})
    assert got is not None and got.status == "ok" and got.items == []


class Required(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class Outer(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    one: Required | None = None
    many: list[Required] = []
    by_key: dict[str, int] = {}


def test_every_invalid_value_goes_and_every_valid_one_stays_in_one_go():
    body = {
        "id": 7,
        "one": {"name": 5},  # its required field is invalid: the object falls back to its default
        "many": [{"name": "a"}, {"name": None}, "x", {"name": "b", "more": 1}, {}],
        "by_key": {"a": 1, "b": "two", "c": 3},
    }
    got = lenient(Outer, body)
    assert got is not None and got.id == 7 and got.one is None
    assert [m.name for m in got.many] == ["a", "b"] and got.many[1].model_extra == {"more": 1}
    assert got.by_key == {"a": 1, "c": 3}
    assert body["many"][1] == {"name": None} and body["by_key"]["b"] == "two"  # the caller's body is untouched


def test_a_missing_required_top_level_field_gives_none():
    assert lenient(Outer, {"one": {"name": "a"}}) is None
    assert lenient(Outer, {"id": "seven"}) is None


def test_a_body_with_hundreds_of_bad_values_keeps_every_valid_one():
    """The shape of bench/normalize.py (correctness only, never timed here): 1,000 segments, 500 bad values."""
    segments = [
        {"id": i, "status": "done", "qa_score": "high" if i % 2 else 0.5, "retry_count": True if i % 4 == 1 else 0}
        for i in range(1000)
    ]
    got = lenient(JobStatus, {"status": "processing", "segment_count": 1000, "segments": segments})
    assert got is not None and len(got.segments) == 1000
    assert [s.id for s in got.segments] == list(range(1000))
    assert all(s.qa_score is None for s in got.segments[1::2]) and all(s.qa_score == 0.5 for s in got.segments[::2])
    assert all(s.retry_count is None for s in got.segments[1::4]) and got.segments[0].retry_count == 0


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
