"""The derivation sections of the REPORTs quote the code each step names, as `file` `function`: `code`, `code`
and `code`. These two functions let a project's tests check that every quoted line still stands in the
function it names, so an edit that moves one makes the report fail its test instead of going stale."""

import importlib
import inspect
import re

QUOTE = r"`([\w/]+\.py)`\s+`([\w.]+)`:\s+((?:`[^`]+`(?:,\s+|\s+and\s+)?)+)"


def quoted_code(text):
    """Every (file, function, code) that `text` quotes as `file` `function`: `code`, `code` and `code`."""
    quotes = []
    for path, name, spans in re.findall(QUOTE, text):
        quotes += [(path, name, code) for code in re.findall(r"`([^`]+)`", spans)]
    return quotes


def missing_quotes(quotes):
    """The quotes whose code is not (or no longer) in the source of the function they name, as lines."""
    missing = []
    for path, name, code in quotes:
        obj = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        for part in name.split("."):
            obj = getattr(obj, part)
        if code not in inspect.getsource(obj):
            missing.append(f"{path} {name}: {code}")
    return missing
