"""What a careless or hostile tenant sends: generated inbound messages and HTTP requests, from one seed.

Every family here is something crmflow must refuse: none of these messages
may be stored, and none may stop a worker or give a 5xx. The families are the
cases found by trying crmflow as a hostile tenant would (deep nesting, huge
integers, NaN, bytes that are not text, garbage headers, foreign tenants, ...)
and their neighbours; each draw varies sizes and positions, so a run of
thousands covers far more than a hand-written list.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crmflow.aggregates.limits import MAX_ARRAY_ITEMS, MAX_JSON_DEPTH, MAX_OBJECT_KEYS, MAX_STRING_CHARS

TENANTS = ("acme", "globex", "canary")


@dataclass(frozen=True)
class Message:
    """One inbound Kafka message: its value and headers, and the family it was drawn from."""

    family: str
    value: bytes
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def cloudevent(rng: random.Random, tenant: str, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "specversion": "1.0", "id": f"ev-{rng.getrandbits(64):016x}", "source": "/web/forms",
        "type": "FormSubmitted", "tenantid": tenant, "time": "2026-03-02T09:00:00+00:00",
        "datacontenttype": "application/json", "data": {"email": "ada@ae.example", "name": "Ada"},
    }  # fmt: skip
    document.update(overrides)
    return document


def valid_message(rng: random.Random, tenant: str) -> Message:
    return Message("valid", json.dumps(cloudevent(rng, tenant)).encode())


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


def _dumps(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


def _deep_brackets(rng: random.Random) -> bytes:
    return b"[" * rng.choice((MAX_JSON_DEPTH + 1, 300, 2_000, 100_000))


def _deep_data(rng: random.Random) -> bytes:
    depth = rng.choice((MAX_JSON_DEPTH + 1, 256, 300, 990))
    # Built as text: json.dumps itself recurses, and would fail on the deepest.
    return (json.dumps(cloudevent(rng, "acme", data="@"))
            .replace('"@"', '{"n":' * depth + "1" + "}" * depth).encode())  # fmt: skip


def _huge_integer(rng: random.Random) -> bytes:
    # As text: Python itself refuses to turn an integer of over 4,300 digits into a string.
    value = rng.choice((str(2**63), str(2**64), str(-(2**63) - 1), "9" * rng.randint(20, 5_000)))
    return (json.dumps(cloudevent(rng, "acme", data={"amount": 0})).replace("0}", f"{value}}}", 1)).encode()


def _not_a_number(rng: random.Random) -> bytes:
    return _dumps(cloudevent(rng, "acme", data={"score": rng.choice((float("nan"), float("inf"), -float("inf")))}))


def _not_utf8(rng: random.Random) -> bytes:
    good = json.dumps(cloudevent(rng, "acme")).encode()
    cut = rng.randrange(len(good))
    return good[:cut] + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80")) + good[cut:]


def _random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400)))


def _not_an_object(rng: random.Random) -> bytes:
    return rng.choice((b"42", b"[]", b'"a string"', b"null", b"true", b"[{}]", b"{", b"}", b"{'single': 1}"))


def _missing_attribute(rng: random.Random) -> bytes:
    document = cloudevent(rng, "acme")
    for name in rng.sample(["specversion", "id", "source", "type"], rng.randint(1, 4)):
        del document[name]
    return _dumps(document)


def _bad_attribute(rng: random.Random) -> bytes:
    name, value = rng.choice([
        ("specversion", "0.3"), ("specversion", 1.0), ("id", ""), ("id", 7), ("source", None), ("type", ["x"]),
        ("time", "yesterday"), ("time", "2026-03-02T09:00:00"), ("subject", {"a": 1}), ("datacontenttype", 5),
        ("datacontenttype", "text/plain"), ("data_base64", "aGVsbG8="),
        # Not CloudEvents, though fromisoformat or a lax reader takes them:
        ("time", "20261201T100000+0000"), ("time", "2026-12-01T10:00+00:00"), ("My_Ext", "1"), ("e" * 30, "1"),
        ("region", {"eu": 1}), ("subject", ""),
    ])  # fmt: skip
    return _dumps(cloudevent(rng, "acme", **{name: value}))


def _bad_tenant(rng: random.Random) -> bytes:
    tenant = rng.choice(("acme\n", "ACME", " acme", "acme ", "", "a" * 64, "-acme", "acme/../globex", "nobody",
                         "ac\u0000me", 42, None, ["acme"]))  # fmt: skip
    document = cloudevent(rng, "acme", tenantid=tenant)
    if tenant is None:
        del document["tenantid"]
    return _dumps(document)


def _reserved(rng: random.Random) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:
        return _dumps(cloudevent(rng, "acme", type=rng.choice(("LeadCreated", "OpportunityWon", "InboundEventAccepted"))))
    if choice == 1:
        return _dumps(cloudevent(rng, "acme", data={"x": {"_type_": "decimal", "_data_": "1"}}))
    return _dumps(cloudevent(rng, "acme", data_base64="AAAA"))


def _too_long_string(rng: random.Random) -> bytes:
    text = "".join(rng.choices(string.ascii_letters, k=MAX_STRING_CHARS + rng.randint(1, 50_000)))
    return _dumps(cloudevent(rng, "acme", data={"note": text}))


def _too_many_keys(rng: random.Random) -> bytes:
    return _dumps(cloudevent(rng, "acme", data={f"k{i}": i for i in range(MAX_OBJECT_KEYS + rng.randint(1, 500))}))


def _too_many_items(rng: random.Random) -> bytes:
    return _dumps(cloudevent(rng, "acme", data={"items": [0] * (MAX_ARRAY_ITEMS + rng.randint(1, 5_000))}))


def _oversize(rng: random.Random) -> bytes:
    return _dumps(cloudevent(rng, "acme", data={"blob": "x" * rng.randint(300_000, 900_000)}))


def _empty(rng: random.Random) -> bytes:
    return b""


HOSTILE_VALUES: dict[str, Callable[[random.Random], bytes]] = {
    "deep_brackets": _deep_brackets, "deep_data": _deep_data, "huge_integer": _huge_integer,
    "not_a_number": _not_a_number, "not_utf8": _not_utf8, "random_bytes": _random_bytes,
    "not_an_object": _not_an_object, "missing_attribute": _missing_attribute, "bad_attribute": _bad_attribute,
    "bad_tenant": _bad_tenant, "reserved": _reserved, "too_long_string": _too_long_string,
    "too_many_keys": _too_many_keys, "too_many_items": _too_many_items, "oversize": _oversize, "empty": _empty,
}  # fmt: skip
def _binary_headers(rng: random.Random, **changes: Any) -> list[tuple[str, bytes | None]]:
    """The ce_ headers and content-type of a binary-mode event (CloudEvents Kafka binding), with changes."""
    attributes: dict[str, Any] = {
        "ce_specversion": b"1.0", "ce_id": f"ev-{rng.getrandbits(64):016x}".encode(), "ce_source": b"/spring/billing",
        "ce_type": b"InvoicePaid", "ce_tenantid": b"acme", "ce_time": b"2026-03-02T09:00:00Z",
        "content-type": b"application/json", **changes,
    }  # fmt: skip
    return [(name, value) for name, value in attributes.items() if value is not ...]  # ...: left out


def _binary(rng: random.Random) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    """A binary-mode record with one thing wrong: in a header, or data that is not what its header says."""
    data = b'{"invoice": "inv-1"}'
    choice = rng.randrange(9)
    if choice == 0:
        return data, _binary_headers(rng, ce_My_Ext=b"1")
    if choice == 1:
        return data, _binary_headers(rng, ce_time=rng.choice((b"20261201T100000+0000", b"2026-12-01T10:00+00:00")))
    if choice == 2:
        return data, _binary_headers(rng, ce_source=b"\xff\xfe")
    if choice == 3:
        return data, _binary_headers(rng, ce_type=...)
    if choice == 4:
        return data, _binary_headers(rng, ce_tenantid=rng.choice((b"nobody", b"ACME", b"")))
    if choice == 5:
        return data, _binary_headers(rng) + [("ce_id", b"again")]
    if choice == 6:
        return data, _binary_headers(rng, **{"content-type": rng.choice((b"text/plain", b"application/xml"))})
    if choice == 7:
        return rng.choice((b"\xff\x00", b"{not json", b"[" * 300)), _binary_headers(rng)
    return data, [("content-type", rng.choice((b"application/cloudevents-batch+json", b"application/cloudevents+avro")))]


BINARY_FAMILY = "binary_mode"  # in headers: only for Kafka messages, not for HTTP bodies
GARBAGE_HEADERS = (
    [("crmflow-attempts", b"not-a-number")], [("crmflow-attempts", b"\xff\xfe")], [("crmflow-attempts", b"-1")],
    [("crmflow-attempts", b"9" * 5_000)], [("\u00e9", b"\x00")], [],
)  # fmt: skip


def hostile_message(rng: random.Random) -> Message:
    """One message crmflow must refuse; sometimes with garbage headers as well, or in binary mode."""
    family = rng.choice([*sorted(HOSTILE_VALUES), BINARY_FAMILY])
    if family == BINARY_FAMILY:
        value, headers = _binary(rng)
        return Message(family, value, headers + list(rng.choice(GARBAGE_HEADERS)))
    return Message(family, HOSTILE_VALUES[family](rng), list(rng.choice(GARBAGE_HEADERS)))


def interleaved(rng: random.Random, hostile: int, valid_per_tenant: int) -> list[Message]:
    """``hostile`` hostile messages with ``valid_per_tenant`` valid ones of every tenant, shuffled together."""
    messages = [hostile_message(rng) for _ in range(hostile)]
    messages += [valid_message(rng, tenant) for tenant in TENANTS for _ in range(valid_per_tenant)]
    rng.shuffle(messages)
    return messages


# HTTP: bodies and path values a hostile client sends.


def hostile_body(rng: random.Random) -> bytes:
    """A request body: a hostile inbound message, or a command-shaped body with hostile values."""
    if rng.random() < 0.6:
        return HOSTILE_VALUES[rng.choice(sorted(HOSTILE_VALUES))](rng)
    value = rng.choice((
        2**64, -(2**70), "x" * (MAX_STRING_CHARS + 1), _nested(MAX_JSON_DEPTH + 5), [0] * (MAX_ARRAY_ITEMS + 1),
        {"_type_": "decimal", "_data_": "NaN"}, "acme\n", None, True, 1e308, "../../etc/passwd", "\u0000",
    ))  # fmt: skip
    name = rng.choice(("name", "lead_id", "campaign_id", "account_id", "amount", "owner", "tenant", "data", "email"))
    return _dumps({name: value, "name": "Ada"} if name != "name" else {name: value})


def hostile_path_value(rng: random.Random) -> str:
    return rng.choice((
        "lead.create", "lead.nope", "..%2F..%2Fetc", "x" * 5_000, "%00", "pipeline", "nope", "12345",
        "00000000-0000-0000-0000-000000000000", "not-a-uuid", "%F0%9F%92%A9", "funnel;DROP TABLE rm_leads",
    ))  # fmt: skip
