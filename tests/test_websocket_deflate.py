"""permessage-deflate (RFC 7692) over real sockets, through the echo app of
ws_apps.py: the negotiation (offers taken, declined, chosen among several;
the options), the cases of the Autobahn testsuite's categories 12 and 13
(messages of 16 B to a few MiB, text and binary, whole and fragmented,
under each combination of context takeover and window sizes, echoed byte
for byte), and the connection failing as it must: RSV1 where it may not
be, text that is not UTF-8 once inflated, data that is not DEFLATE, a
decompression bomb past the message size limit (with the server's memory
checked). The websockets library is the well-behaved client; frames are
also built byte for byte (support/rawws.py), compressed with zlib."""
import asyncio
import functools
import random
import sys
import zlib

import pytest

from support.rawws import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, close_payload, frame, open_websocket

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")

APP = "ws_apps:routing"
KiB = 1024
MiB = 1024 * KiB
TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; left out of a message (RFC 7692 7.2.1)
THRESHOLD = 128  # the server sends shorter messages uncompressed
DEFAULT_WINDOW = 12


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.start(name="deflate", app=APP)


@pytest.fixture(scope="module")
def wide(module_servers):
    """A server whose windows may be zlib's largest, 15 bits."""
    return module_servers.start(name="deflate-wide", app=APP, options={"websocket_deflate_window_bits": 15})


def run(coroutine):
    return asyncio.run(coroutine)


def ws_url(server, target="/echo"):
    return f"ws://127.0.0.1:{server.port}{target}"


# ---------------------------------------------------------------- payloads

WORDS = ("the quick brown fox jumps over a lazy dog while permessage deflate keeps its window and context "
         "takeover across messages: κόσμε, Grüße, €uro, 😀 emoji").split()


@functools.lru_cache(maxsize=None)
def base_text(seed):
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(3000)).encode()


@functools.lru_cache(maxsize=None)
def text_payload(size, seed=1):
    """`size` bytes of UTF-8 text, compressible as prose is."""
    base = base_text(seed)
    data = (base * (size // len(base) + 1))[:size]
    text = data.decode("utf-8", "ignore")  # a code point cut at the end goes
    return text + "." * (size - len(text.encode()))


@functools.lru_cache(maxsize=None)
def binary_payload(size, kind, seed=2):
    rng = random.Random(seed * 1000 + size)
    if kind == "random":  # incompressible: stored blocks
        return rng.randbytes(size)
    block = rng.randbytes(1000)  # repeated 1000 bytes apart: within a window of 10 bits or more
    return (block * (size // len(block) + 1))[:size]


def payloads(sizes):
    """Autobahn 12's three kinds of message at each size: text, repetitive
    binary, random binary."""
    for size in sizes:
        yield text_payload(size)
        yield binary_payload(size, "repeated")
        yield binary_payload(size, "random")


# ---------------------------------------------------------------- a raw client

class Deflater:
    """The client's side of what was agreed: zlib compresses its messages
    and inflates the server's, each with context takeover or without."""

    def __init__(self, answer=None, client_bits=15):
        params = parse_answer(answer) if answer else {}
        self.server_bits = int(params.get("server_max_window_bits", 15))
        self.client_bits = min(int(params.get("client_max_window_bits", 15)), client_bits)
        self.server_no_context_takeover = "server_no_context_takeover" in params
        self.client_no_context_takeover = "client_no_context_takeover" in params
        self.compressor = self.decompressor = None

    def compress(self, payload):
        if self.compressor is None or self.client_no_context_takeover:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, -self.client_bits)
        data = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(TAIL)
        return data[:-4]

    def decompress(self, payload):
        if self.decompressor is None or self.server_no_context_takeover:
            self.decompressor = zlib.decompressobj(-self.server_bits)
        return self.decompressor.decompress(payload + TAIL)


def parse_answer(answer):
    name, *params = [part.strip() for part in answer.split(";")]
    assert name == "permessage-deflate", answer
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        assert key not in parsed, answer
        parsed[key] = value
    return parsed


def open_deflate(server, *offers, target="/echo"):
    """A raw WebSocket offering `offers` (a Sec-WebSocket-Extensions field
    each): (the socket, the answer, the client's Deflater)."""
    ws = open_websocket(server, target, extra_headers=[("Sec-WebSocket-Extensions", offer) for offer in offers])
    answer = ws.response.header("Sec-WebSocket-Extensions")
    return ws, answer, Deflater(answer)


def send_compressed(ws, opcode, compressed, fragments=1):
    """A compressed message's payload in `fragments` frames, RSV1 on the first only."""
    step = -(-len(compressed) // fragments) if compressed else 1
    pieces = [compressed[i:i + step] for i in range(0, len(compressed), step)] or [b""]
    ws.send(b"".join(frame(opcode if i == 0 else CONTINUATION, piece, fin=i == len(pieces) - 1,
                           rsv=4 if i == 0 else 0) for i, piece in enumerate(pieces)))


def read_message(ws, deflater):
    """(opcode, payload inflated, whether it came compressed) of the
    server's next data message; pings and pongs on the way are skipped."""
    opcode, parts, compressed = None, [], False
    while True:
        received = ws.read_frame(allow_rsv1=True)
        if received.opcode in (PING, PONG, CLOSE):
            assert not received.rsv1, received
            if received.opcode == CLOSE:
                return CLOSE, received.payload, False
            continue
        if opcode is None:
            opcode, compressed = received.opcode, received.rsv1
        else:
            assert received.opcode == CONTINUATION and not received.rsv1, received
        parts.append(received.payload)
        if received.fin:
            break
    payload = b"".join(parts)
    return opcode, deflater.decompress(payload) if compressed else payload, compressed


def echo_compressed(ws, deflater, opcode, payload, fragments=1):
    send_compressed(ws, opcode, deflater.compress(payload), fragments)
    return read_message(ws, deflater)


def expect_failure(ws, code):
    """The server fails the connection: its next frame is a close frame
    with `code` (no message before it), then the connection ends."""
    received = ws.read_frame(allow_rsv1=True)
    assert received.opcode == CLOSE and received.close_code == code, received
    ws.assert_closed()


def close_cleanly(ws):
    ws.send_frame(CLOSE, close_payload(1000))
    assert ws.read_close(answer=False).close_code == 1000


# ---------------------------------------------------------------- negotiation

def answer(*params, window=DEFAULT_WINDOW):
    """The server's answer: `params` in its order, then its window."""
    parts = ["permessage-deflate", *params]
    if window is not None:
        parts.append(f"server_max_window_bits={window}")
    return "; ".join(parts)


ACCEPTED = {
    "a plain offer": ("permessage-deflate", answer()),
    "client_max_window_bits without a value: the server chooses":
        ("permessage-deflate; client_max_window_bits", answer() + "; client_max_window_bits=12"),
    "server_no_context_takeover": ("permessage-deflate; server_no_context_takeover",
                                   answer("server_no_context_takeover")),
    "client_no_context_takeover": ("permessage-deflate; client_no_context_takeover",
                                   answer("client_no_context_takeover")),
    "server_max_window_bits below the server's": ("permessage-deflate; server_max_window_bits=10", answer(window=10)),
    "server_max_window_bits of 9": ("permessage-deflate; server_max_window_bits=9", answer(window=9)),
    "server_max_window_bits above the server's": ("permessage-deflate; server_max_window_bits=15", answer()),
    "client_max_window_bits below the server's": ("permessage-deflate; client_max_window_bits=9",
                                                  answer() + "; client_max_window_bits=9"),
    "client_max_window_bits above the server's": ("permessage-deflate; client_max_window_bits=15",
                                                  answer() + "; client_max_window_bits=12"),
    "all four": ("permessage-deflate; client_max_window_bits=10; server_max_window_bits=11; "
                 "client_no_context_takeover; server_no_context_takeover",
                 answer("server_no_context_takeover", "client_no_context_takeover", window=11)
                 + "; client_max_window_bits=10"),
    "a quoted value": ('permessage-deflate; server_max_window_bits="10"', answer(window=10)),
    "a quoted value with a quoted-pair": ('permessage-deflate; server_max_window_bits="1\\0"', answer(window=10)),
    "names in any case, spaces around": ("PerMessage-Deflate ;Server_No_Context_Takeover ;  client_max_window_bits = 9",
                                         answer("server_no_context_takeover") + "; client_max_window_bits=9"),
    "after another extension": ("x-webkit-deflate-frame, permessage-deflate", answer()),
    "the first acceptable of several": (
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover, "
        "permessage-deflate; server_no_context_takeover", answer("client_no_context_takeover")),
    "after a declined offer": ("permessage-deflate; mystery, permessage-deflate", answer()),
    "after an extension with a quoted comma": (
        'other; note="a, permessage-deflate; server_max_window_bits=9", permessage-deflate', answer()),
    "after an element that cannot be read": ('permessage-deflate; =1, permessage-deflate; server_max_window_bits=10',
                                             answer(window=10)),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_an_offer_taken_and_used(server, case):
    """The answer says what was agreed, and messages both ways then work
    with exactly those parameters (the client's windows as answered)."""
    offer, expected = ACCEPTED[case]
    ws, got, deflater = open_deflate(server, offer)
    with ws:
        assert got == expected
        for payload in (text_payload(3000).encode(), text_payload(3000, seed=5).encode(), b"short"):
            opcode, echoed, compressed = echo_compressed(ws, deflater, TEXT, payload)
            assert (opcode, echoed, compressed) == (TEXT, payload, len(payload) >= THRESHOLD)
        close_cleanly(ws)


DECLINED = {
    "no extension": None,
    "another extension only": "x-webkit-deflate-frame",
    "a name that is not quite it": "permessage-deflat",
    "server_max_window_bits of 7": "permessage-deflate; server_max_window_bits=7",
    "server_max_window_bits of 16": "permessage-deflate; server_max_window_bits=16",
    "server_max_window_bits of 8: zlib cannot": "permessage-deflate; server_max_window_bits=8",
    "server_max_window_bits with a leading zero": "permessage-deflate; server_max_window_bits=09",
    "server_max_window_bits not a number": "permessage-deflate; server_max_window_bits=ten",
    "server_max_window_bits without a value": "permessage-deflate; server_max_window_bits",
    "server_max_window_bits quoted with a space": 'permessage-deflate; server_max_window_bits="1 0"',
    "server_max_window_bits negative": "permessage-deflate; server_max_window_bits=-10",
    "client_max_window_bits of 7": "permessage-deflate; client_max_window_bits=7",
    "client_max_window_bits of 16": "permessage-deflate; client_max_window_bits=16",
    "client_max_window_bits not a number": "permessage-deflate; client_max_window_bits=x",
    "client_max_window_bits empty": 'permessage-deflate; client_max_window_bits=""',
    "server_no_context_takeover twice": "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "client_no_context_takeover twice": "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "server_max_window_bits twice": "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
    "client_max_window_bits twice": "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    "a value for server_no_context_takeover": "permessage-deflate; server_no_context_takeover=1",
    "a value for client_no_context_takeover": 'permessage-deflate; client_no_context_takeover="yes"',
    "a parameter RFC 7692 does not define": "permessage-deflate; max_window_bits=10",
    "a parameter of another extension": "permessage-deflate; no_context_takeover",
    "a trailing semicolon": "permessage-deflate;",
    "no semicolon": "permessage-deflate server_no_context_takeover",
    "an unterminated quote": 'permessage-deflate; server_max_window_bits="10',
}


@pytest.mark.parametrize("case", DECLINED)
def test_an_offer_declined_leaves_the_handshake_uncompressed(server, case):
    """RFC 7692 5: an offer the server cannot take is declined, not the
    handshake; RSV1 is then a protocol error, as without an offer."""
    offer = DECLINED[case]
    ws, got, _ = open_deflate(server, *([offer] if offer else []))
    with ws:
        assert got is None
        ws.send_frame(TEXT, b"plain " * 40)
        assert ws.read_message() == (TEXT, b"plain " * 40)  # read_frame refuses RSV1 here
        ws.send_frame(TEXT, zlib.compress(b"x")[2:-4], rsv=4)
        expect_failure(ws, 1002)


def test_offers_across_several_fields_are_read_in_order(server):
    ws, got, _ = open_deflate(server, "permessage-deflate; server_max_window_bits=7",
                              "permessage-deflate; client_no_context_takeover", "permessage-deflate")
    with ws:
        assert got == answer("client_no_context_takeover")


def test_the_websockets_client_negotiates_by_default(server):
    from websockets.asyncio.client import connect

    async def talk():
        async with connect(ws_url(server)) as ws:
            await ws.send(text_payload(5000))
            return ws.response.headers.get("Sec-WebSocket-Extensions"), ws.protocol.extensions, await ws.recv()

    header, extensions, echoed = run(talk())
    # It offers "permessage-deflate; client_max_window_bits".
    assert header == answer() + "; client_max_window_bits=12"
    assert [extension.name for extension in extensions] == ["permessage-deflate"]
    assert echoed == text_payload(5000)


WIDE = {
    "permessage-deflate": "permessage-deflate",
    "permessage-deflate; client_max_window_bits": "permessage-deflate",
    "permessage-deflate; server_max_window_bits=15": "permessage-deflate; server_max_window_bits=15",
    "permessage-deflate; server_max_window_bits=13; client_max_window_bits=14":
        "permessage-deflate; server_max_window_bits=13; client_max_window_bits=14",
}


@pytest.mark.parametrize("offer", WIDE)
def test_with_15_bit_windows_nothing_is_limited_unasked(wide, offer):
    ws, got, _ = open_deflate(wide, offer)
    with ws:
        assert got == WIDE[offer]


def test_websocket_deflate_window_bits_caps_both_windows(servers):
    narrow = servers.start(app=APP, options={"websocket_deflate_window_bits": 9})
    ws, got, deflater = open_deflate(narrow, "permessage-deflate; client_max_window_bits")
    with ws:
        assert got == "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"
        # Repeats 1000 bytes apart cannot be reached in 512 bytes: what the
        # server compressed inflates with a 9-bit window.
        payload = binary_payload(64 * KiB, "repeated")
        assert echo_compressed(ws, deflater, BINARY, payload) == (BINARY, payload, True)


def test_the_extension_can_be_switched_off(servers):
    plain = servers.start(app=APP, options={"websocket_per_message_deflate": False})
    ws, got, _ = open_deflate(plain, "permessage-deflate; client_max_window_bits")
    with ws:
        assert got is None
        ws.send_frame(TEXT, zlib.compress(b"x" * 200)[2:-4], rsv=4)
        expect_failure(ws, 1002)


@pytest.mark.parametrize("value", [8, 16, "12", True])
def test_window_bits_outside_9_to_15_are_refused(value):
    import ursa

    with pytest.raises((TypeError, ValueError)):
        ursa._core.check_option("websocket_deflate_window_bits", value)


def test_the_options_and_their_defaults():
    import ursa

    assert ursa.OPTIONS["websocket_per_message_deflate"] is True
    assert ursa.OPTIONS["websocket_deflate_window_bits"] == DEFAULT_WINDOW
    assert ursa._core.OPTION_SPECS["websocket_deflate_window_bits"] == ("count", 9, 15)


# ---------------------------------------------------------------- Autobahn 12 and 13: echoes

SIZES = [16, 64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB]


def client_factory(**settings):
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    settings.setdefault("compress_settings", {"memLevel": 5})
    return ClientPerMessageDeflateFactory(**settings)


async def echo_all(server, factory, messages, fragmented=False):
    """Each message sent (as fragments, with `fragmented`) and received
    back; the echoes, and the extension's parameters as agreed."""
    from websockets.asyncio.client import connect

    echoes = []
    async with connect(ws_url(server), extensions=[factory], compression=None, max_size=None,
                       ping_interval=None) as ws:
        assert [extension.name for extension in ws.protocol.extensions] == ["permessage-deflate"]
        for message in messages:
            if fragmented:
                step = max(1, len(message) // 5)
                await ws.send([message[i:i + step] for i in range(0, len(message), step)] or [message])
            else:
                await ws.send(message)
            echoes.append(await ws.recv())
        agreed = ws.protocol.extensions[0]
    return echoes, agreed


# 13.1-13.7: the client's offer, against the server that may use 15 bits
# (so that what the client asks for is what is used) or the default one.
CONFIGURATIONS = {
    "13.1: the default offer": ("default", {}),
    "13.2: client_no_context_takeover": ("default", {"client_no_context_takeover": True}),
    "server_no_context_takeover": ("default", {"server_no_context_takeover": True}),
    "no context takeover either way": ("default", {"server_no_context_takeover": True,
                                                   "client_no_context_takeover": True}),
    **{f"13.3-13.4: server_max_window_bits={bits}": ("wide", {"server_max_window_bits": bits})
       for bits in range(9, 16)},
    **{f"client_max_window_bits={bits}": ("wide", {"client_max_window_bits": bits}) for bits in range(9, 16)},
    "13.5: 9-bit windows, client_no_context_takeover": (
        "wide", {"server_max_window_bits": 9, "client_max_window_bits": 9, "client_no_context_takeover": True}),
    "13.6: 15-bit windows, client_no_context_takeover": (
        "wide", {"server_max_window_bits": 15, "client_max_window_bits": 15, "client_no_context_takeover": True}),
    "13.7: 9-bit windows, no context takeover either way": (
        "wide", {"server_max_window_bits": 9, "client_max_window_bits": 9, "client_no_context_takeover": True,
                 "server_no_context_takeover": True}),
    "15-bit windows, no context takeover either way": (
        "wide", {"server_max_window_bits": 15, "client_max_window_bits": 15, "client_no_context_takeover": True,
                 "server_no_context_takeover": True}),
}


@pytest.mark.parametrize("case", CONFIGURATIONS)
def test_12_13_messages_of_every_size_echo_exactly(server, wide, case):
    which, settings = CONFIGURATIONS[case]
    target = wide if which == "wide" else server
    messages = list(payloads(SIZES))
    echoes, agreed = run(echo_all(target, client_factory(**settings), messages))
    assert echoes == messages
    # What was agreed is what the client asked for (within the server's windows).
    cap = 15 if which == "wide" else DEFAULT_WINDOW
    assert agreed.local_no_context_takeover == settings.get("client_no_context_takeover", False)
    assert agreed.remote_no_context_takeover == settings.get("server_no_context_takeover", False)
    assert agreed.remote_max_window_bits == min(settings.get("server_max_window_bits", 15), cap)
    if "client_max_window_bits" in settings:
        assert agreed.local_max_window_bits == min(settings["client_max_window_bits"], cap)


@pytest.mark.parametrize("context_takeover", [True, False])
def test_12_fragmented_compressed_messages(server, context_takeover):
    settings = {} if context_takeover else {"server_no_context_takeover": True, "client_no_context_takeover": True}
    messages = list(payloads([1 * KiB, 64 * KiB, 256 * KiB]))
    echoes, _ = run(echo_all(server, client_factory(**settings), messages, fragmented=True))
    assert echoes == messages


@pytest.mark.parametrize("size", [1 * MiB, 4 * MiB])
def test_12_messages_of_a_few_mib(server, size):
    messages = [text_payload(size), binary_payload(size, "repeated"), binary_payload(size, "random")]
    echoes, _ = run(echo_all(server, client_factory(client_max_window_bits=True), messages))
    assert echoes == messages


def test_many_compressed_connections_at_once(server):
    async def one(number):
        echoes, _ = await echo_all(server, client_factory(), [f"{number}:" + text_payload(2000, seed=number)] * 3)
        assert echoes == [f"{number}:" + text_payload(2000, seed=number)] * 3

    async def all_of_them():
        await asyncio.gather(*(one(number) for number in range(100)))

    run(all_of_them())
    server.assert_serving()


# ---------------------------------------------------------------- raw frames: what the server sends

def test_short_messages_go_uncompressed(server):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        for size in (0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 10 * KiB):
            payload = b"a" * size
            ws.send_frame(BINARY, payload)
            assert read_message(ws, deflater) == (BINARY, payload, size >= THRESHOLD), size
        close_cleanly(ws)


def test_the_server_takes_its_context_over_unless_told_not_to(server):
    payload = text_payload(2000).encode()
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        sizes = []
        for _ in range(2):
            ws.send_frame(TEXT, payload)
            received = ws.read_frame(allow_rsv1=True)
            assert received.rsv1 and received.fin
            assert deflater.decompress(received.payload) == payload
            sizes.append(len(received.payload))
        assert sizes[1] < sizes[0] // 10  # the second message refers to the first


def test_server_no_context_takeover_compresses_each_message_afresh(server):
    payload = text_payload(2000).encode()
    ws, _, _ = open_deflate(server, "permessage-deflate; server_no_context_takeover")
    with ws:
        compressed = []
        for _ in range(3):
            ws.send_frame(TEXT, payload)
            received = ws.read_frame(allow_rsv1=True)
            assert received.rsv1
            compressed.append(received.payload)
            # A fresh inflater reads each one.
            assert zlib.decompressobj(-DEFAULT_WINDOW).decompress(received.payload + TAIL) == payload
        assert compressed[0] == compressed[1] == compressed[2]


def test_the_server_keeps_the_clients_context(server):
    """Without client_no_context_takeover the client's second message refers
    back into its first: the server's inflater kept it."""
    payload = text_payload(3000).encode()
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        first, second = deflater.compress(payload), deflater.compress(payload)
        assert len(second) < len(first) // 10
        for compressed in (first, second):
            send_compressed(ws, TEXT, compressed)
            assert read_message(ws, deflater)[:2] == (TEXT, payload)


@pytest.mark.parametrize("fragments", [2, 7, 1000])
def test_a_compressed_message_in_many_fragments(server, fragments):
    payload = text_payload(4000).encode()
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        compressed = deflater.compress(payload)
        send_compressed(ws, TEXT, compressed, fragments=min(fragments, len(compressed)))
        assert read_message(ws, deflater)[:2] == (TEXT, payload)


def test_pings_between_compressed_fragments(server):
    payload = text_payload(4000).encode()
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        compressed = deflater.compress(payload)
        half = len(compressed) // 2
        ws.send_frame(TEXT, compressed[:half], fin=False, rsv=4)
        ws.send_frame(PING, b"between")
        received = ws.read_frame()
        assert (received.opcode, received.payload) == (PONG, b"between")
        ws.send_frame(CONTINUATION, b"", fin=False)
        ws.send_frame(CONTINUATION, compressed[half:])
        assert read_message(ws, deflater)[:2] == (TEXT, payload)


def test_empty_compressed_messages(server):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        # Nothing at all, and an empty stored block (RFC 7692 7.2.3.6's example).
        for compressed in (b"", b"\x00", deflater.compress(b"")):
            send_compressed(ws, BINARY, compressed)
            assert read_message(ws, deflater) == (BINARY, b"", False)
        close_cleanly(ws)


@pytest.mark.parametrize("after", [b"\x00", b""])
def test_a_message_ending_with_a_final_block(server, after):
    """A client may end a message's DEFLATE data with BFINAL (RFC 7692
    7.2.3.3), then the 0x00 that begins the empty stored block the
    receiver completes (or, as zlib's Z_FINISH leaves it, nothing); the
    next message starts afresh."""
    ws, _, deflater = open_deflate(server, "permessage-deflate; client_no_context_takeover")
    with ws:
        # RFC 7692 7.2.3.3's own example, "Hello".
        send_compressed(ws, TEXT, bytes.fromhex("f348cdc9c90700") + after)
        assert read_message(ws, deflater)[:2] == (TEXT, b"Hello")
        for seed in (1, 2):
            payload = text_payload(3000, seed=seed).encode()
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            send_compressed(ws, TEXT, compressor.compress(payload) + compressor.flush(zlib.Z_FINISH) + after,
                            fragments=3)
            assert read_message(ws, deflater)[:2] == (TEXT, payload)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_a_code_point_split_across_compressed_fragments(server, split):
    """Stored blocks keep the bytes where they are: the split is in the text."""
    text = "a😀b".encode()
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        compressor = zlib.compressobj(0, zlib.DEFLATED, -15)
        first = compressor.compress(text[:split + 1]) + compressor.flush(zlib.Z_SYNC_FLUSH)
        second = compressor.compress(text[split + 1:]) + compressor.flush(zlib.Z_SYNC_FLUSH)
        ws.send_frame(TEXT, first, fin=False, rsv=4)
        ws.send_frame(CONTINUATION, second[:-4])
        assert read_message(ws, deflater)[:2] == (TEXT, text)


def test_the_message_size_limit_applies_to_the_inflated_message(servers):
    small = servers.start(app=APP, options={"websocket_max_message_size": 1000})
    ws, _, deflater = open_deflate(small, "permessage-deflate")
    with ws:
        assert echo_compressed(ws, deflater, BINARY, b"x" * 1000)[:2] == (BINARY, b"x" * 1000)
        send_compressed(ws, BINARY, deflater.compress(b"x" * 1001))
        expect_failure(ws, 1009)


# ---------------------------------------------------------------- raw frames: failures

@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_rsv1_on_a_control_frame_is_a_protocol_error(server, opcode):
    ws, _, _ = open_deflate(server, "permessage-deflate")
    with ws:
        ws.send_frame(opcode, close_payload(1000) if opcode == CLOSE else b"ping", rsv=4)
        expect_failure(ws, 1002)


@pytest.mark.parametrize("first_compressed", [True, False])
def test_rsv1_on_a_continuation_frame_is_a_protocol_error(server, first_compressed):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        compressed = deflater.compress(text_payload(1000).encode())
        ws.send_frame(TEXT, compressed[:10] if first_compressed else b"plain", fin=False,
                      rsv=4 if first_compressed else 0)
        ws.send_frame(CONTINUATION, compressed[10:], rsv=4)
        expect_failure(ws, 1002)


@pytest.mark.parametrize("rsv", [1, 2, 3, 5, 6, 7])
def test_the_other_reserved_bits_stay_a_protocol_error(server, rsv):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        ws.send_frame(TEXT, deflater.compress(b"hello " * 50), rsv=rsv)
        expect_failure(ws, 1002)


INVALID_UTF8 = [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", b"\x80",
                b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xfe",
                b"\xce", b"a\xc0", b"ok" * 500 + b"\xff" + b"ok" * 500]


@pytest.mark.parametrize("payload", INVALID_UTF8)
def test_compressed_text_that_is_not_utf8_closes_with_1007(server, payload):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        send_compressed(ws, TEXT, deflater.compress(payload))
        expect_failure(ws, 1007)


def utf8_samples(count):
    """Byte strings near the edges of UTF-8 (the first and last code point
    of each length; the bytes just past them: overlong forms, surrogates,
    past U+10FFFF; lone and truncated sequences), after runs of ASCII of
    every length (the check reads ASCII eight bytes at a time)."""
    rng = random.Random(11)
    valid = [b"a", b"\x7f", b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xee\x80\x80",
             b"\xef\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", "κόσμε".encode()]
    invalid = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xe0\x9f\xbf", b"\xe0\xa0", b"\xed\xa0\x80",
               b"\xf0\x8f\xbf\xbf", b"\xf0\x90\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xfe", b"\xff"]
    for _ in range(count):
        pieces = [rng.choice(invalid if rng.random() < 0.2 else valid) for _ in range(rng.randrange(1, 5))]
        yield b"x" * rng.randrange(0, 20) + b"".join(pieces)


def test_compressed_text_is_judged_as_python_judges_utf8(server):
    """What the server accepts as text is what Python's strict decoder does."""
    ws = None
    try:
        for sample in utf8_samples(150):
            try:
                sample.decode("utf-8")
                valid = True
            except UnicodeDecodeError:
                valid = False
            if ws is None:
                ws, _, deflater = open_deflate(server, "permessage-deflate")
            send_compressed(ws, TEXT, deflater.compress(sample))
            if valid:
                assert read_message(ws, deflater)[:2] == (TEXT, sample), sample
            else:
                expect_failure(ws, 1007)
                ws.close()
                ws = None
    finally:
        if ws is not None:
            ws.close()


def test_compressed_binary_need_not_be_utf8(server):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        payload = b"\xff\xfe" * 100
        assert echo_compressed(ws, deflater, BINARY, payload)[:2] == (BINARY, payload)


def test_invalid_utf8_in_a_later_compressed_fragment_fails_before_the_end(server):
    """Checked as it inflates: the failure comes before the message's last frame."""
    ws, _, _ = open_deflate(server, "permessage-deflate")
    with ws:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        ws.send_frame(TEXT, compressor.compress("κόσμε".encode()) + compressor.flush(zlib.Z_SYNC_FLUSH), fin=False,
                      rsv=4)
        ws.send_frame(CONTINUATION, compressor.compress(b"\xed\xa0\x80") + compressor.flush(zlib.Z_SYNC_FLUSH),
                      fin=False)
        expect_failure(ws, 1007)


def test_compressed_text_ending_mid_code_point_closes_with_1007(server):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        send_compressed(ws, TEXT, deflater.compress(b"ok\xf0\x90\x80"), fragments=2)
        expect_failure(ws, 1007)


def final_block_then(more):
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(b"x" * 300) + compressor.flush(zlib.Z_FINISH) + more


GARBAGE = {
    "a reserved block type": b"\xff\xff\xff\xff",
    "a stored block whose lengths disagree": b"\x00\x05\x00\x00\x00hello",
    "bytes after a final block": final_block_then(b"more"),
    "two bytes after a final block": final_block_then(b"\x00\x00"),
    "a message cut inside a block": Deflater().compress(text_payload(1000, seed=3).encode())[:-10],
}


@pytest.mark.parametrize("case", GARBAGE)
def test_data_that_is_not_deflate_closes_with_1007(server, case):
    ws, _, _ = open_deflate(server, "permessage-deflate")
    with ws:
        send_compressed(ws, BINARY, GARBAGE[case])
        expect_failure(ws, 1007)


def test_garbage_after_a_valid_message_closes_with_1007(server):
    ws, _, deflater = open_deflate(server, "permessage-deflate")
    with ws:
        assert echo_compressed(ws, deflater, TEXT, b"fine " * 100)[:2] == (TEXT, b"fine " * 100)
        send_compressed(ws, TEXT, b"\xff" * 20, fragments=4)
        expect_failure(ws, 1007)


def test_a_window_larger_than_agreed_closes_with_1007(server):
    """The server told the client to keep to 9 bits, and kept 512 bytes of
    its last message: a reference 2000 bytes back into it cannot be
    inflated. (Within one message zlib reads back into what it inflated,
    whatever the window.)"""
    ws, got, deflater = open_deflate(server, "permessage-deflate; client_max_window_bits=9")
    with ws:
        assert got.endswith("client_max_window_bits=9")
        too_wide = Deflater(client_bits=15)
        payload = random.Random(7).randbytes(2000)
        send_compressed(ws, BINARY, too_wide.compress(payload))
        assert read_message(ws, deflater)[:2] == (BINARY, payload)
        send_compressed(ws, BINARY, too_wide.compress(payload))
        expect_failure(ws, 1007)


@functools.lru_cache(maxsize=None)
def bomb(inflated_mib):
    """DEFLATE data that inflates to `inflated_mib` MiB of zeros, about a
    thousandth of that: the same sync-flushed piece again and again (each
    starts afresh, so they join into one stream)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return (piece * inflated_mib)[:-4]


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KiB
    raise AssertionError("no VmHWM")


def test_a_decompression_bomb_closes_with_1009_at_the_default_limit(server):
    ws, _, _ = open_deflate(server, "permessage-deflate")
    with ws:
        send_compressed(ws, BINARY, bomb(64))  # 64 MiB, over 16 MiB
        expect_failure(ws, 1009)
    server.assert_serving()


@pytest.mark.parametrize("fragments", [1, 16])
def test_a_decompression_bomb_never_takes_more_memory_than_the_limit(servers, fragments):
    """A 256 MiB bomb against a 1 MiB limit: the server's peak memory grows
    by about the limit, not by what the bomb would inflate to."""
    small = servers.start(app=APP, options={"websocket_max_message_size": MiB})
    ws, _, deflater = open_deflate(small, "permessage-deflate")
    with ws:
        payload = text_payload(100 * KiB).encode()
        assert echo_compressed(ws, deflater, TEXT, payload)[:2] == (TEXT, payload)  # everything is warm
        before = peak_rss(small.pid)
        send_compressed(ws, BINARY, bomb(256), fragments=fragments)
        expect_failure(ws, 1009)
        grown = peak_rss(small.pid) - before
    assert grown < 16 * MiB, f"the server's peak memory grew by {grown / MiB:.1f} MiB"
    small.assert_serving()
