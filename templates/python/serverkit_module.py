"""Helpers for a serverkit module in Python: the plumbing every module repeats, so that
`app.py` is only the module's own protocol. Written by `serverkit new`; yours to change.

- `Module`: the hooks with their usual defaults; subclass it as `WitWorld` in app.py.
- `option`, `listen_options`: the vocabulary, with `address`, `port` and `backlog`.
- `text`, `integer`, `flag`: typed reads of the module's section (defaults applied).
- `listen()`: binds the address and port the section names, in `prestart`.
- `Session`: a connection as an iterator of lines and `reply`/`write_all`, with line
  length bounded and writes split into the pieces the host accepts.

componentize-py snapshots the interpreter after the top-level imports: import every
standard-library module at the top of a file, never inside a hook.
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, prestart, streams
from wit_world.imports.types import (
    ConfigValue_Boolean,
    ConfigValue_Integer,
    ConfigValue_Text,
    OptionSpec,
    OptionType,
    Version,
)

# The contract version this module was generated from (wit/world.wit).
CONTRACT = Version({{contract}})

# Longest line `Session.lines` accepts; a longer one ends the session (a defence against
# a client that never sends a newline).
MAX_LINE_BYTES = 64 * 1024

# Most bytes asked of the input stream at once.
READ_CHUNK = 16 * 1024

# `blocking-write-and-flush` accepts at most 4096 bytes per call (wasi:io/streams).
WRITE_CHUNK = 4096


def option(name, option_type, help, default=None, required=False):
    """One option of the vocabulary; `default` is a plain str, int or bool."""
    if isinstance(default, bool):
        default = ConfigValue_Boolean(default)
    elif isinstance(default, int):
        default = ConfigValue_Integer(default)
    elif isinstance(default, str):
        default = ConfigValue_Text(default)
    return OptionSpec(name=name, option_type=option_type, default=default, required=required, help=help)


def listen_options(port, backlog=128):
    """`address`, `port` and `backlog`, the options `listen()` reads."""
    return [
        option("address", OptionType.ADDRESS, "Address to listen on", "0.0.0.0"),
        option("port", OptionType.PORT, "TCP port to listen on", port),
        option("backlog", OptionType.INTEGER, "Listen backlog passed to listen()", backlog),
    ]


def text(key, default=None):
    """A text-like option of the module's section, or `default`."""
    value = config.get(key)
    return value.value if isinstance(value, ConfigValue_Text) else default


def integer(key, default=None):
    """An integer or port option, or `default`."""
    value = config.get(key)
    return value.value if isinstance(value, ConfigValue_Integer) else default


def flag(key):
    """A boolean option that is on; absent counts as off."""
    return config.get(key) == ConfigValue_Boolean(True)


def listen():
    """Binds the address and port the section names (call it in `prestart`)."""
    address = text("address", "0.0.0.0")
    port = integer("port")
    backlog = integer("backlog", 128)
    if port is None or not 0 < port < 65536:
        raise Err(f"port {port} is not a TCP port")
    try:
        return prestart.bind_listener(address, port, backlog)
    except Err as e:
        raise Err(f"cannot listen on {address}:{port}: {e.value}")


class Session:
    """One client connection: `lines()` yields what it sends, `reply` answers.

    Use it in a `with` block: the streams are children of the connection and are dropped
    first when the block ends.
    """

    def __init__(self, conn):
        pair = conn.streams()
        if pair is None:
            raise Err("connection streams already taken")
        self.conn = conn
        self.input, self.output = pair
        self.buffer = bytearray()
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.output.__exit__(*exc)
        self.input.__exit__(*exc)
        self.conn.__exit__(*exc)
        return False

    def lines(self):
        """The client's lines as text, without their `\\n` or `\\r\\n`, until it closes."""
        while (line := self._next_line()) is not None:
            yield line.rstrip(b"\r\n").decode("utf-8", "replace")

    def reply(self, text):
        """Sends `text` and a newline."""
        self.write_all(text.encode() + b"\n")

    def write_all(self, data):
        """Sends all of `data`, in the pieces the host accepts."""
        for start in range(0, len(data), WRITE_CHUNK):
            self.output.blocking_write_and_flush(data[start : start + WRITE_CHUNK])

    def _next_line(self):
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


class Module(wit_world.WitWorld):
    """The hooks with the defaults a module without that need would write."""

    def construct(self) -> None:
        pass

    def prestart(self) -> None:
        pass

    def operator(self) -> None:
        pass

    def session(self, conn) -> None:
        raise Err("this module serves no connections")

    def report(self) -> list[str]:
        return []
