"""pyecho: the line-echo module of guest-modules/echo, written in Python.

It exists to show that the module contract (wit/) is language-neutral: this file and the
contract are all that is needed, and `componentize-py` turns them into a component the
host loads like any other. The client sends lines; each comes back unchanged. `QUIT`
ends the session. The report names the interpreter, so an operator can tell a Python
module from a Rust one.

Build (see README.md):

    componentize-py -d ../../wit -w module componentize app -o pyecho.wasm
"""

import sys

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, log, prestart, streams
from wit_world.imports.types import (
    ConfigValue_Boolean,
    ConfigValue_Integer,
    ConfigValue_Text,
    Descriptor,
    OptionSpec,
    OptionType,
    Version,
)

# Longest line echoed; a longer line ends the session (a defence against a client that
# never sends a newline).
MAX_LINE_BYTES = 64 * 1024

# Most bytes asked of the input stream at once.
READ_CHUNK = 16 * 1024

# `blocking-write-and-flush` accepts at most 4096 bytes per call (wasi:io/streams).
WRITE_CHUNK = 4096


def option(name, option_type, default, help):
    return OptionSpec(name=name, option_type=option_type, default=default, required=False, help=help)


def text(key):
    value = config.get(key)
    return value.value if isinstance(value, ConfigValue_Text) else None


def integer(key, default):
    value = config.get(key)
    return value.value if isinstance(value, ConfigValue_Integer) else default


def write_all(output, data):
    for start in range(0, len(data), WRITE_CHUNK):
        output.blocking_write_and_flush(data[start : start + WRITE_CHUNK])


class Lines:
    """Splits what arrives on an input stream into lines (each with its `\\n`, if any)."""

    def __init__(self, input):
        self.input = input
        self.buffer = bytearray()
        self.closed = False

    def next(self):
        """The next line, or None once the client closed the connection."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > MAX_LINE_BYTES:
                raise Err(f"line longer than {MAX_LINE_BYTES} bytes")
            if self.closed:
                rest, self.buffer = bytes(self.buffer), bytearray()
                return rest or None
            try:
                self.buffer += self.input.blocking_read(READ_CHUNK)
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    self.closed = True
                else:
                    raise Err(f"read failed: {e.value.value.to_debug_string()}")


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="pyecho",
            description="Line echo written in Python: every line a client sends comes back unchanged",
            version=Version(1, 0, 0),
            # The contract version this module was generated from (wit/world.wit).
            contract=Version(1, 1, 0),
            authors=["The serverkit developers"],
            vocabulary=[
                option("address", OptionType.ADDRESS, ConfigValue_Text("0.0.0.0"), "Address to listen on"),
                option("port", OptionType.PORT, ConfigValue_Integer(7), "TCP port to listen on"),
                option("backlog", OptionType.INTEGER, ConfigValue_Integer(128), "Listen backlog passed to listen()"),
                option("greeting", OptionType.TEXT, None, "Line sent to each client when it connects"),
                option(
                    "fault_injection",
                    OptionType.BOOLEAN,
                    ConfigValue_Boolean(False),
                    "For tests: the line `!raise` raises an uncaught Python exception",
                ),
            ],
        )

    def construct(self) -> None:
        pass

    def prestart(self) -> None:
        address = text("address") or "0.0.0.0"
        port = integer("port", 7)
        backlog = integer("backlog", 128)
        if not 0 < port < 65536:
            raise Err(f"port {port} is out of range")
        if not 0 <= backlog < 2**32:
            raise Err(f"backlog {backlog} is out of range")
        try:
            prestart.bind_listener(address, port, backlog)
        except Err as e:
            raise Err(f"cannot listen on {address}:{port}: {e.value}")

    def operator(self) -> None:
        pass

    def session(self, conn) -> None:
        faults = config.get("fault_injection") == ConfigValue_Boolean(True)
        greeting = text("greeting")
        with conn:
            pair = conn.streams()
            if pair is None:
                raise Err("connection streams already taken")
            input, output = pair
            # The streams are children of the connection: drop them first.
            with input, output:
                if greeting is not None:
                    write_all(output, greeting.encode() + b"\n")
                lines = Lines(input)
                while (line := lines.next()) is not None:
                    command = line.rstrip()
                    if command == b"QUIT":
                        break
                    if faults and command == b"!raise":
                        log.log(log.Level.WARN, "fault injection: raising on request")
                        raise RuntimeError("fault injection")
                    write_all(output, line)

    def report(self) -> list[str]:
        return [f"written in Python {sys.version.split()[0]}"]
