#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/ from the real wire formats (DESIGN.md §4,
the test fixtures, config/*.toml). Run from fuzz/; `cargo fuzz cmin` then keeps the useful
ones. Seeds are named seed-*; files the fuzzer adds are named by their hash."""
import json, os, struct, glob

def put(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# TCP session: first byte = piece size for the splitter.
tcp = {
    "pin": b"PIN 482913\r\n",
    "idpin": b"ID alice PIN 0482\n",
    "card": b"CARD 04:A2:B3:C4\r\nPIN 1234\r\n",
    "selfservice": b"CHANGE alice 0482 9071\nFORGOT alice\r\n",
    "ping": b"ping\rQUIT\r\n",
    "stx": b"\x0204A1B2C3D4\x03\r\n",
    "uid": b"UID: 0012345678\n",
    "overlong": b"PIN " + b"9" * 300 + b"\r\nPING\r\n",
    "probe": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\x00\xa5",
    "bare": b"04A2B3C4\r\n12345678\n",
}
for i, (k, v) in enumerate(tcp.items()):
    put("tcp_session", k, bytes([i * 7]) + v)

# Keypad: framing, max_length, timeout/10ms, then ops (bit 7: pause; else push n+1 bytes).
def ops(data, n=7):
    out = b""
    for i in range(0, len(data), n + 1):
        chunk = data[i:i + n + 1]
        out += bytes([len(chunk) - 1]) + chunk
    return out
put("keypad", "keys", bytes([0, 8, 50]) + ops(b"1234#") + b"\xc8" + ops(b"12*9876#"))
put("keypad", "change", bytes([0, 8, 50]) + ops(b"**alice#0482#9071#9071#"))
put("keypad", "forgot", bytes([0, 8, 50]) + ops(b"*#alice#") + b"\xff" + ops(b"*#al"))
put("keypad", "line", bytes([1, 12, 30]) + ops(b"482913\r\n\n1A2b\r*#\r"))
put("keypad", "wiegand4", bytes([2, 6, 20]) + ops(bytes([1, 2, 3, 4, 11, 10, 5, 11])))
put("keypad", "wiegand8", bytes([3, 6, 20]) + ops(bytes([0xE1, 0xD2, 0xC3, 0xB4, 0x4B, 0x5A])))
put("keypad", "overlong", bytes([0, 4, 10]) + ops(b"123456789#") + b"\x81" + ops(b"1\x00\xff#"))

# MQTT requests: topic \n payload.
reqs = [
    '{"id":"r1","pin":"482913"}',
    '{"id":"r2","user":"alice","pin":"0482"}',
    '{"id":7,"card":"04A2B3C4","pin":"1234","action":"unlock"}',
    '{"id":"c1","action":"change","user":"alice","pin":"0482","new_pin":"9071"}',
    '{"id":"f1","action":"forgot","user":"alice"}',
    '{"id":"r","action":"open","pin":"1"}',
    '{"id":"r","pin":"1","extra":[{"y":"z"}]}',
]
for i, r in enumerate(reqs):
    put("mqtt_request", f"req{i}", "pinwarden/site/request/door-%d\n" % i + r)
put("mqtt_request", "zigbee-topic", 'zigbee2mqtt/keypad-1\n{"action_code":"1234","action_transaction":17}')
put("mqtt_request", "other", 'pinwarden/site/events\n{"id":1e400,"pin":"\\u0000"}')

# Zigbee2MQTT keypad states.
for i, z in enumerate([
    '{"action":"disarm","action_code":"1234","action_transaction":17,"battery":90,"linkquality":120}',
    '{"action_code":4321,"action_transaction":1}',
    '{"action_code":null,"action_transaction":3,"tamper":false}',
    '{"action_code":"12","action_transaction":"x"}',
    '{"action_code":"12 34","action_transaction":-1.5e3}',
]):
    put("zigbee", f"state{i}", z)

# Control socket lines.
control = [
    {"cmd": "status"},
    {"cmd": "user_add", "user": {"id": "alice", "name": "Alice", "email": "alice@example.org",
     "groups": ["staff"], "cards": ["04A2B3C4"], "valid_until": "2027-01-31"},
     "pin": "482913", "generate": False, "expires": None, "uses": 3, "windows": ["Mon-Fri 08:00-18:00"]},
    {"cmd": "user_set_pin", "id": "alice", "pin": None, "source": "ldap", "full": True, "force": False},
    {"cmd": "user_show", "id": "alice"},
    {"cmd": "user_list"},
    {"cmd": "guest_add", "sponsor": "bob", "guest": {"id": "g1", "name": "Guest", "valid_for": "8h"}},
    {"cmd": "import", "dry_run": True, "check_unique": True},
    {"cmd": "audit", "last": 20},
    {"cmd": "sync", "source": "corp"},
]
feed = [
    {"feed": "rows", "rows": [{"line": 2, "id": "alice", "name": "Alice", "email": None,
     "groups": ["a", "b"], "pin": "482913", "cards": []}]},
    {"feed": "problems", "problems": [{"line": 3, "message": "row has 7 fields, the header 5"}]},
    {"feed": "end"},
]
frames = [{"progress": {"done": 1000, "total": 20000}}, "send_again",
          {"done": {"ok": True, "data": {"users": 3}}},
          {"done": {"ok": False, "error": "no user `x`", "problems": [{"line": 0, "message": "m"}]}}]
put("control_json", "requests", "\n".join(json.dumps(c) for c in control))
put("control_json", "feed", "\n".join(json.dumps(c) for c in feed))
put("control_json", "frames", "\n".join(json.dumps(c) for c in frames))

# Import files: first byte % 4 picks , \t ; or the byte itself.
put("csv_import", "csv", b"\x00id,name,email,groups,pin,card\nalice,Alice,alice@example.org,staff;print,482913,04A2B3C4\nbob,\"Bob, Jr.\",,staff,,\n")
put("csv_import", "tsv", b"\x01\xef\xbb\xbfid\tname\tpin\r\nalice\tAlice\t0482\r\n\r\ncarol\tCarol\t9071\r\n")
put("csv_import", "problems", b"\x00id,name,pin,colour\nalice,Alice\nbob,Bob,1,2,3\n\"unterminated,x\n")
put("csv_import", "semicolon", b"\x02id;name;groups\nalice;Alice;a|b\nalice;Again;c\n")
put("csv_import", "empty", b"\x00\n\n")

# SCIM list responses (what tests/fixtures/scim_server.py serves).
ext = "urn:ietf:params:scim:schemas:extension:pinwarden:2.0:User"
users = [
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "2819c223",
     "externalId": "a1", "userName": "alice", "displayName": "Alice",
     "name": {"formatted": "Alice A."}, "active": True,
     "emails": [{"value": "a@work.example", "type": "work", "primary": True},
                {"value": "a@home.example", "type": "home"}],
     "groups": [{"value": "g1", "display": "staff"}, {"value": "g2", "display": "print"}],
     ext: {"pin": "482913", "cards": ["04A2B3C4", 12345], "enabled": True, "validFrom": "2026-01-01"},
     "meta": {"lastModified": "2026-11-30T08:00:00Z", "expires": "2027-01-31T00:00:00+01:00"}},
    {"id": 42, "userName": "bob", "active": False, "emails": [], "groups": "staff",
     "meta": {"lastModified": "yesterday"}},
    {"userName": "noid"},
]
put("scim", "list", json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
    "totalResults": 3, "startIndex": 1, "itemsPerPage": 3, "Resources": users}))
put("scim", "empty", '{"totalResults":0}')
put("scim", "error", '{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","detail":"bad filter"}')

# IPP responses: version, status, request id, attribute groups, end tag.
def attr(tag, name, value):
    if isinstance(value, int):
        value = struct.pack(">i", value)
    elif isinstance(value, str):
        value = value.encode()
    n = name.encode()
    return bytes([tag]) + struct.pack(">H", len(n)) + n + struct.pack(">H", len(value)) + value
def extra(tag, value):
    return attr(tag, "", value)
def ipp(status, groups, version=(2, 0)):
    out = bytes(version) + struct.pack(">HI", status, 1)
    op = b"\x01" + attr(0x47, "attributes-charset", "utf-8") + attr(0x48, "attributes-natural-language", "en")
    out += op
    for tag, attrs in groups:
        out += bytes([tag]) + b"".join(attrs)
    return out + b"\x03"
put("ipp_response", "printer", ipp(0, [(0x04, [attr(0x23, "printer-state", 3),
    attr(0x44, "printer-state-reasons", "none")])]))
put("ipp_response", "printer-jam", ipp(0, [(0x04, [attr(0x23, "printer-state", 5),
    attr(0x44, "printer-state-reasons", "media-jam-error"), extra(0x44, "door-open-report")])]))
put("ipp_response", "jobs", ipp(0, [
    (0x02, [attr(0x21, "job-id", 12), attr(0x23, "job-state", 4), attr(0x42, "job-originating-user-name", "alice")]),
    (0x02, [attr(0x21, "job-id", 13), attr(0x23, "job-state", 3),
            attr(0x35, "job-originating-user-name", b"\x00\x02en\x00\x03bob")]),
]))
put("ipp_response", "not-found", ipp(0x0406, []))
put("ipp_response", "not-possible", ipp(0x040C, [(0x03, [attr(0x41, "status-message", "job not held")])]))
put("ipp_response", "forbidden", ipp(0x0401, [], version=(1, 1)))

# Configuration files: the shipped ones and small variants.
for path in sorted(glob.glob("../config/*.toml")):
    put("config_toml", os.path.basename(path), open(path, "rb").read())

# LDAP entries are `arbitrary`-structured: raw bytes that decode to varied entries.
import random
rng = random.Random(14)
texts = [b"uid", b"alice", b"cn=Print Staff,ou=groups,dc=example,dc=org", b"20260131080000Z",
         b"20260131080000.5+0100", b"133500000000000000", b"TRUE", b"512", b"482913",
         b"ldap1:{\"mode\":\"poll\",\"server\":\"s\",\"high_water\":\"1\",\"full_at\":0}"]
for i in range(8):
    data = bytearray()
    for _ in range(12):
        t = rng.choice(texts)
        data += bytes([rng.randrange(256)]) + bytes([len(t)]) + t
    put("ldap_entry", f"mix{i}", bytes(data))
