"""One declaration per search option: the record the CLI, the checks and the docs are made from.

An option is a :class:`SearchConfig <automl.settings.run_config.SearchConfig>` field whose
``metadata`` holds an :class:`Option` (:func:`option` writes both at once), or a CLI-only
:class:`Option` with a ``name`` of its own. Its allowed values come from
:mod:`automl.settings.choices`, their one home.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from automl.settings.choices import allowed

#: ``Option.rule`` values: a whole number >= 1, or a number > 0 in ``Option.unit``.
WHOLE, POSITIVE = "whole", "positive"


@dataclass(frozen=True)
class Option:
    """How one search option is parsed, checked and documented.

    Attributes:
        help: what the option does, for ``--help`` and the docs.
        name: the SearchConfig field (filled in by :func:`declared`), or the argparse dest
            of a CLI-only option.
        flag: the long flag; default ``--`` + the name with dashes.
        short: a one-letter flag beside it (``-v``).
        choices: the allowed values (a tuple of :mod:`automl.settings.choices`).
        metavar: the value's placeholder in ``--help`` and the docs.
        rule: :data:`WHOLE` or :data:`POSITIVE`, checked by :func:`check`.
        unit: the unit of a :data:`POSITIVE` number, named in its error message.
        check: ``check(value, config)`` raising a one-line ValueError: what no rule says.
        make: the Makefile variable that passes it.
        default_text: the default in words where the declared default does not say it.
        kind: the field's value type (filled in by :func:`declared`): bool, int, float, str,
            tuple (a comma list on the command line) or dict (repeated ``NAME=VALUE``).
        default: the field's declared default (filled in by :func:`declared`).
    """

    help: str
    name: str = ""
    flag: str | None = None
    short: str | None = None
    choices: tuple | None = None
    metavar: str | None = None
    rule: str | None = None
    unit: str | None = None
    check: Callable[[Any, Any], None] | None = None
    make: str | None = None
    default_text: str | None = None
    kind: type = str
    default: Any = None

    @property
    def long_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """The argparse attribute (``--time-budget`` -> ``time_budget``)."""
        return self.long_flag.lstrip("-").replace("-", "_")

    def cli_default(self):
        """The default as the command line spells it."""
        if self.kind is tuple:
            return ",".join(self.default)
        return [] if self.kind is dict else self.default

    def cli_arguments(self) -> tuple[list[str], dict]:
        """``(flags, keyword arguments)`` of ``argparse.ArgumentParser.add_argument``."""
        flags = [f for f in (self.short, self.long_flag) if f]
        help_text = self.help
        if self.default is None and self.default_text:
            help_text += f" (default: {self.default_text})"
        kwargs: dict = {"help": help_text, "dest": self.dest}
        if self.kind is bool:
            return flags, {**kwargs, "action": "store_true"}
        if self.kind is dict:
            return flags, {**kwargs, "action": "append", "default": [], "metavar": self.metavar}
        kwargs["default"] = self.cli_default()
        if self.kind in (int, float):
            kwargs["type"] = self.kind
        for key in ("choices", "metavar"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        return flags, kwargs


def option(default=None, *, factory: Callable | None = None, **declaration) -> Any:
    """A dataclass field whose metadata is its :class:`Option` (``help=`` and the rest)."""
    metadata = {"option": Option(**declaration)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(cls) -> tuple[Option, ...]:
    """The options of a dataclass's fields, in field order, with name, kind and default."""
    hints = typing.get_type_hints(cls)
    options = []
    for field in dataclasses.fields(cls):
        spec = field.metadata["option"]
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        options.append(dataclasses.replace(spec, name=field.name, kind=_kind(hints[field.name]),
                                           default=default))
    return tuple(options)


def _kind(hint) -> type:
    """``int`` for ``int | None``, ``tuple`` for ``tuple[str, ...]``, and so on."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (tuple, dict):
        return typing.get_origin(hint)
    return args[0] if args else hint


def check(spec: Option, value, config) -> None:
    """Raise a one-line ValueError unless ``value`` meets ``spec``'s declared constraints
    (an unset optional value meets them all)."""
    if value is None and spec.default is None:
        return
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{spec.long_flag}: got {value!r}; choose {allowed(spec.choices)}")
    if spec.rule == WHOLE and (not isinstance(value, int) or value < 1):
        raise ValueError(f"{spec.long_flag}: got {value!r}; expected a whole number >= 1")
    if spec.rule == POSITIVE and not value > 0:
        raise ValueError(f"{spec.name}: got {value!r}; expected {spec.unit} > 0")
    if spec.check is not None:
        spec.check(value, config)


def config_values(options: Iterable[Option], args: Mapping) -> dict:
    """The field values of parsed command-line ``args`` (argparse's dests)."""
    values = {}
    for spec in options:
        value = args[spec.dest]
        if spec.kind is tuple:
            value = tuple(value.split(","))
        elif spec.kind is dict:
            value = parse_fixed(value)
        values[spec.name] = value
    return values


def as_text(value) -> str:
    """A default in words: ``none`` for None, ``18`` for 18.0."""
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def parse_fixed(pairs: list[str]) -> dict:
    """``["blocks=3", "family=plain"]`` -> ``{"blocks": 3, "family": "plain"}`` (JSON values)."""
    fixed = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--fix expects NAME=VALUE, got {pair!r}")
        try:
            fixed[name] = json.loads(value)
        except json.JSONDecodeError:
            fixed[name] = value
    return fixed


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's default unless its help already states it in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_arguments(parser: argparse.ArgumentParser, options: Iterable[Option],
                  names: Iterable[str] | None = None) -> None:
    """One argument of ``parser`` per declared option (only the fields ``names``, if given)."""
    for spec in options:
        if names is None or spec.name in names:
            flags, kwargs = spec.cli_arguments()
            parser.add_argument(*flags, **kwargs)
