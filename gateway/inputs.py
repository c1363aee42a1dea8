"""Canonical inputs: the vendor-neutral shapes a submit may carry instead of a vendor's native body.

An input object with a `kind` is canonical and is validated here, once, by the gateway, before any provider
sees it (one rule set for every provider: a blank text is refused everywhere with the same error). Providers
receive the typed model (`TextInput` or `DocumentInput`); an input without `kind` is the vendor's native body
and is passed on as the dict it is, for the provider to check.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gateway.errors import InputError

#: the canonical input kinds (`Capabilities.input_kinds` also knows "native")
TEXT = "text"
DOCUMENT = "document"
#: the kind of an input without `kind`: the vendor's own create body
NATIVE = "native"
KINDS = (NATIVE, TEXT, DOCUMENT)
MAX_TEXTS = 10_000
MAX_FILENAME = 255
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _encodable(value: str) -> str:
    """Text a vendor can be sent and the store can keep: valid UTF-8 (no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.match(value):
        raise ValueError("must be a BCP-47 language tag such as 'en', 'de-DE' or 'pt-BR'")
    return value


def _filename(value: str) -> str:
    if _CONTROL.search(value) or value.strip() in ("", ".", ".."):
        raise ValueError("must name a file, without control characters")
    return value


def _decoded(value: str) -> bytes:
    return base64.b64decode("".join(value.split()), validate=True)


def _base64(value: str) -> str:
    try:
        content = _decoded(value)
    except (binascii.Error, ValueError):
        raise ValueError("must be the file's bytes in standard base64") from None
    if not content:
        raise ValueError("must hold at least one byte")
    return value


Language = Annotated[str, Field(min_length=2, max_length=64), AfterValidator(_language)]
Text = Annotated[str, AfterValidator(_encodable), AfterValidator(_not_blank)]
Filename = Annotated[str, Field(max_length=MAX_FILENAME), AfterValidator(_encodable), AfterValidator(_filename)]


class _Canonical(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TextInput(_Canonical):
    """Texts to translate, in order; each output of the result answers one text."""

    kind: Literal["text"] = "text"
    source_language: Language
    target_language: Language
    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS)


class DocumentInput(_Canonical):
    """One file to translate; `content_base64` is its bytes in standard base64 (whitespace ignored)."""

    kind: Literal["document"] = "document"
    source_language: Language
    target_language: Language
    filename: Filename
    content_base64: Annotated[str, AfterValidator(_base64)]

    @property
    def content(self) -> bytes:
        """The document's bytes."""
        return _decoded(self.content_base64)


CanonicalInput = Annotated[TextInput | DocumentInput, Field(discriminator="kind")]
#: what a provider's `submit` receives: a canonical input, or the vendor's native body as a dict
SubmitInput = TextInput | DocumentInput | dict[str, Any]

_ADAPTER: TypeAdapter[TextInput | DocumentInput] = TypeAdapter(CanonicalInput)


def input_kind(input: SubmitInput) -> str:
    """ "text", "document" or "native"."""
    return input.kind if isinstance(input, TextInput | DocumentInput) else NATIVE


def parse_input(
    input: Any, *, kinds: Collection[str] | None = None, loc: tuple[str | int, ...] = ("input",)
) -> SubmitInput:
    """The typed canonical input for an object with a `kind`, the native dict for one without; InputError
    (every problem, located under `loc`) for anything else. With `kinds` (a provider's
    `capabilities.input_kinds`), an input of another kind is refused first, at its `kind`. A model given back
    is returned as it is."""
    if kinds is not None:
        check_kind(input, kinds, loc=loc)
    if isinstance(input, TextInput | DocumentInput):
        return input
    if not isinstance(input, dict):
        raise InputError("input must be an object", loc=list(loc))
    if "kind" not in input:
        return input
    try:
        return _ADAPTER.validate_python(input)
    except ValidationError as exc:
        raise InputError.many(
            [{"loc": [*loc, *_loc(err)], "msg": _message(err)} for err in exc.errors()],
            "the canonical input is not valid",
        ) from None


def check_kind(input: Any, kinds: Collection[str], *, loc: tuple[str | int, ...] = ("input",)) -> None:
    """InputError at the input's `kind` when it is a kind the gateway knows but not one of `kinds`."""
    if isinstance(input, TextInput | DocumentInput):
        kind: Any = input.kind
    elif isinstance(input, dict):
        kind = input.get("kind", NATIVE)
    else:
        return
    if isinstance(kind, str) and kind in KINDS and kind not in kinds:
        taken = ", ".join(repr(k) for k in kinds) or "none"
        raise InputError(f"{kind!r} input is not taken here (input kinds taken: {taken})", loc=[*loc, "kind"])


def _loc(err: Any) -> list[str | int]:
    """pydantic's location without the union member's tag (`("text", "texts", 0)` -> `["texts", 0]`)."""
    if str(err.get("type", "")).startswith("union_tag"):
        return ["kind"]
    items = [p for p in err["loc"] if isinstance(p, str | int)]
    return items[1:] if items and items[0] in (TEXT, DOCUMENT) else items


def _message(err: Any) -> str:
    if err.get("type") == "union_tag_invalid":
        return f"kind must be one of {TEXT!r}, {DOCUMENT!r} (or leave kind out for the vendor's native input)"
    if err.get("type") == "union_tag_not_found":
        return "kind is required"
    text = str(err.get("msg", "invalid"))
    return text.removeprefix("Value error, ")
