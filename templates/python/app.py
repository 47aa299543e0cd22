"""{{name}}: a serverkit module in Python. It greets each client with its `greeting`
option, then answers every line with the line reversed; `QUIT` ends the session.

`describe` declares the options, `prestart` binds the listener they name, `session`
speaks the protocol. Replace `answer` (in protocol.py) with your own protocol; the
plumbing is in serverkit_module.py.
"""

from wit_world.imports.types import Descriptor, OptionType, Version

import serverkit_module as sk
from protocol import answer


class WitWorld(sk.Module):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="{{name}}",
            description="Greets, then sends every line back reversed",
            version=Version(0, 1, 0),
            contract=sk.CONTRACT,
            authors=["Your Name <you@example.org>"],
            vocabulary=sk.listen_options(7070)
            + [sk.option("greeting", OptionType.TEXT, "Line sent to each client when it connects", "hello")],
        )

    def prestart(self) -> None:
        sk.listen()

    def session(self, conn) -> None:
        with sk.Session(conn) as session:
            session.reply(sk.text("greeting", ""))
            for line in session.lines():
                text = answer(line)
                if text is None:
                    return session.reply("bye")
                session.reply(text)
