"""Training configuration in nanoGPT's style: a dataclass of plain defaults, overridden by `--name=value`.

    cfg = parse_config(Config(), sys.argv[1:])       # python -m mlp_mnist.train --lr=3e-3 --epochs=5

A `--config=path.py` argument first applies a file of `name = value` lines. Unknown names and values of the
wrong type are a one-line UserError.
"""

import ast
import dataclasses

from shared.cli import UserError


def _convert(name, text, default):
    kind = type(default)
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise UserError(f"--{name}={text}: expected true or false")
    if default is None or kind in (list, tuple, dict):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    try:
        return kind(text)
    except ValueError:
        raise UserError(f"--{name}={text}: expected a {kind.__name__}") from None


def _apply_file(cfg, path):
    try:
        source = open(path).read()
    except OSError as e:
        raise UserError(f"--config={path}: cannot read it ({e.strerror})") from None
    values = {}
    try:
        for node in ast.parse(source).body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                values[node.targets[0].id] = ast.literal_eval(node.value)
    except (ValueError, SyntaxError) as e:
        raise UserError(f"--config={path}: only 'name = literal' lines are allowed ({e})") from None
    return _replace(cfg, values, origin=path)


def _replace(cfg, values, origin):
    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"{origin}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(names))}")
    return dataclasses.replace(cfg, **values)


def parse_config(cfg, argv=None):
    """Return a copy of dataclass `cfg` with `--name=value` (or `--name value`) overrides from argv applied."""
    argv = list(argv or [])
    values = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise UserError(f"unexpected argument {arg!r}: settings look like --name=value")
        key, eq, text = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                text, i = argv[i + 1], i + 1
            else:
                text = "true"
        key = key.replace("-", "_")
        if key == "config":
            cfg = _apply_file(cfg, text)
        else:
            values[key] = text
        i += 1
    defaults = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for key in values:
        if key not in defaults:
            raise UserError(f"unknown flag --{key}; known: {', '.join('--' + n for n in sorted(defaults))}")
    return dataclasses.replace(cfg, **{k: _convert(k, v, defaults[k]) for k, v in values.items()})


def check_choices(cfg, choices):
    """UserError naming the flag and its choices when a setting is not one of them. choices: {name: allowed}."""
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
