"""Writes the seed corpus of fuzz_request into fuzz/corpus/ (one file per seed).

    python fuzz/make_corpus.py

Each file is the harness's input: a flags byte (0x01 small limits, 0x02
read wsgi.input by lines), a big-endian 16-bit split point, then the bytes
a client sends. Real requests, pipelined ones and the bad inputs the
robustness tests send, each split in the middle of something interesting.
"""
import pathlib

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def chunked(*pieces, trailers=b""):
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n" + trailers + b"\r\n"


GET = b"GET /index.html?q=1&r=%20x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n"
POST = (b"POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 11\r\n\r\nhello=world")
CHUNKED = (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value\r\nhello\r\n6;q=\"quoted\"\r\n world\r\n0\r\nX-Trailer: yes\r\nX-Sum: 11\r\n\r\n")

SEEDS = {
    "get": (0, GET),
    "get-http10": (0, b"GET / HTTP/1.0\r\n\r\n"),
    "get-http10-keep-alive": (0, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2),
    "head": (0, b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n"),
    "options-star": (0, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
    "absolute-form": (0, b"GET http://example.com:8080/p/a%2Fth?x=1#frag HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    "connect": (0, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    "many-headers": (0, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v%d\r\n" % (i, i) for i in range(30))
                     + b"Cookie: a=b\r\nCookie: c=d\r\nX_Under_Score: dropped\r\n\r\n"),
    "post": (0, POST),
    "post-lines": (2, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nline one\nline two\nend"),
    "post-spilled": (1, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n" + b"z" * 300),
    "expect-continue": (0, b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata"),
    "chunked": (0, CHUNKED),
    "chunked-lines": (2, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + chunked(b"a\nb", b"\nc\n", b"d")),
    "chunked-spilled": (1, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + chunked(b"y" * 100, b"y" * 100)),
    "pipelined": (0, GET + POST + CHUNKED + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    "pipelined-small-limits": (1, GET + POST + b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n"),
    "upgrade": (0, b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nrest"),
    "leading-empty-line": (0, b"\r\n" + GET),
    # bad inputs
    "cl-and-te": (0, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    "duplicate-cl": (0, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    "te-gzip": (0, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    "te-space-colon": (0, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    "te-folded": (0, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    "obs-fold": (0, b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"),
    "empty-name": (0, b"GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"),
    "nul-value": (0, b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n"),
    "chunk-overflow": (0, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"10000000000000000\r\nhello\r\n0\r\n\r\n"),
    "chunk-no-crlf": (0, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
    "chunk-extension-long": (1, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;"
                                + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
    "version-09": (0, b"GET /\r\n\r\n"),
    "version-2": (0, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
    "rtsp": (0, b"DESCRIBE / RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    "long-target": (1, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    "long-header": (1, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 200 + b"\r\n\r\n"),
    "too-many-headers": (1, b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * 10 + b"\r\n"),
    "body-too-large": (1, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n\r\n" + b"b" * 600),
    "hundred-gb": (0, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 107374182400\r\n\r\nxx"),
    "trailers-large": (1, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
                          + b"X-T: " + b"t" * 300 + b"\r\n\r\n"),
}


def split_point(request):
    """Somewhere interesting: inside the head's end, or the middle."""
    marker = request.find(b"\r\n\r\n")
    return marker + 2 if marker > 0 else len(request) // 2


def main():
    CORPUS.mkdir(exist_ok=True)
    for name, (flags, request) in SEEDS.items():
        split = min(split_point(request), 0xFFFF)
        data = bytes([flags, split >> 8, split & 0xFF]) + request
        (CORPUS / name).write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {CORPUS}")


if __name__ == "__main__":
    main()
