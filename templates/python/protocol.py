"""{{name}}'s protocol, apart from the host's API so that it can be tested with plain
Python: `python3 -m unittest`."""


def answer(line):
    """The answer to one line: its characters reversed, or None for `QUIT`."""
    if line == "QUIT":
        return None
    return line[::-1]
