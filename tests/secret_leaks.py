# Where a secret's digits show up in what the bench keeps or a log prints.
# A plain `"0042" in json.dumps(rows)` also finds the digits inside a
# timestamp such as 1796642069.004217 - a test that fails one run in a few
# hundred for nothing. A PIN leaks as text of its own: a string, or a whole
# number, with no digit or decimal point right beside it.
import re


def leaks(secret, *values):
    """Every string (keys included) or whole number in the JSON-shaped
    values, or line of a str value, that holds `secret` on its own."""
    own = re.compile(r"(?<![\d.])" + re.escape(secret) + r"(?![\d.])")
    return [s for v in values for s in _texts(v) if own.search(s)]


def _texts(node):
    if isinstance(node, str):
        yield from node.splitlines() or [node]
    elif isinstance(node, bool) or node is None or isinstance(node, float):
        return
    elif isinstance(node, int):
        yield str(node)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _texts(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _texts(v)
