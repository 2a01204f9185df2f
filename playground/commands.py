"""What Discord's own client does with a typed slash command, over the commands the bot synced.

``parse`` turns ``/compose style:zelda-bach bars:32`` into the command's name and typed option
values, refusing what Discord's client refuses (an unknown command or option, a missing required
option, a number out of its range, a value not among the choices). ``suggest`` is the popup above
the message box: command names, subcommands, option names, an option's choices. Options the bot
completes itself (``autocomplete``) are left to the caller, which asks the bot.

The specs are the JSON the bot sent to ``PUT /applications/{id}/commands``.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from fakediscord.payloads import ATTACHMENT, BOOLEAN, INTEGER, NUMBER, STRING, SUB_COMMAND, SUB_COMMAND_GROUP
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
MAX_SUGGESTIONS = 25  # Discord shows at most 25 choices

# "name:" at the start or after a space begins an option; its value runs to the next one.
_OPTION = re.compile(r"(?:^|(?<=\s))([a-z0-9_-]+):", re.IGNORECASE)


class CommandError(ValueError):
    """A typed command Discord's client would not send; the message is for the person."""


@dataclass
class Typed:
    """A command line split the way the client reads it."""

    path: list[str]  # command, then subcommand group / subcommand words
    options: list[tuple[str, str]] = field(default_factory=list)  # (name, raw text), in order
    trailing: str = ""  # a word after the path that is not yet "name:"


@dataclass
class Parsed:
    name: str  # "compose", or "model load" for a subcommand
    options: dict[str, Any]  # option name -> value of the option's type; attachments: the option's name only
    attachment: str | None = None  # the option that takes the attached file, if the command has one


@dataclass
class Suggestion:
    label: str  # what the popup shows
    detail: str  # a description, greyed
    text: str  # the whole message box after choosing it


def split(text: str) -> Typed:
    """``/model load name:v3`` -> path ['model', 'load'], options [('name', 'v3')]."""
    text = text.lstrip()
    if text.startswith("/"):
        text = text[1:]
    matches = list(_OPTION.finditer(text))
    head = text[: matches[0].start()] if matches else text
    words = head.split()
    trailing = "" if head.endswith((" ", "\t")) or not words or matches else words.pop()
    options = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        options.append((match.group(1).lower(), text[match.end():end]))
    return Typed(path=[w.lower() for w in words], options=options, trailing=trailing.lower())


def _find(specs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((s for s in specs if s["name"] == name), None)


def leaf(specs: list[dict[str, Any]], path: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The command or subcommand the path names, and the words of it used."""
    if not path:
        raise CommandError("Type / and a command, e.g. /compose style:zelda-bach")
    command = _find(specs, path[0])
    if command is None:
        known = ", ".join(f"/{s['name']}" for s in specs)
        raise CommandError(f"There is no /{path[0]} command. Commands: {known}.")
    used = [path[0]]
    node = command
    for word in path[1:]:
        subs = [o for o in node.get("options", []) if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        sub = _find(subs, word)
        if sub is None:
            break
        node, used = sub, used + [word]
    return node, used


def _subcommands(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in node.get("options", []) if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]


def value_of(option: dict[str, Any], raw: str) -> Any:
    name, kind, text = option["name"], option["type"], raw.strip().strip('"').strip()
    if text == "":
        raise CommandError(f"{name}: type a value after {name}:")
    if option.get("choices"):
        for choice in option["choices"]:
            if text.lower() in (choice["name"].lower(), str(choice["value"]).lower()):
                return choice["value"]
        allowed = ", ".join(str(c["value"]) for c in option["choices"])
        raise CommandError(f"{name}: {text!r} is not one of the choices ({allowed}).")
    if kind == BOOLEAN:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise CommandError(f"{name}: choose True or False.")
    if kind in (INTEGER, NUMBER):
        try:
            number: Any = int(text) if kind == INTEGER else float(text)
        except ValueError:
            raise CommandError(f"{name}: {text!r} is not a {'whole ' if kind == INTEGER else ''}number.") from None
        low, high = option.get("min_value"), option.get("max_value")
        if (low is not None and number < low) or (high is not None and number > high):
            raise CommandError(f"{name}: the value must be between {low:g} and {high:g}.")
        return number
    if kind == STRING:
        low, high = option.get("min_length"), option.get("max_length")
        if (low is not None and len(text) < low) or (high is not None and len(text) > high):
            raise CommandError(f"{name}: between {low or 0} and {high} characters, please.")
        return text
    raise CommandError(f"{name}: the playground cannot fill this kind of option.")


def parse(specs: list[dict[str, Any]], text: str, *, has_file: bool = False) -> Parsed:
    """The command and its option values, as Discord's client would send them."""
    typed = split(text)
    path = typed.path + ([typed.trailing] if typed.trailing else [])
    node, used = leaf(specs, path)
    if len(used) < len(path):
        raise CommandError(f"/{' '.join(used)} has no {path[len(used)]!r}."
                           + (f" Choose: {', '.join(s['name'] for s in _subcommands(node))}." if _subcommands(node)
                              else ""))
    if _subcommands(node):
        raise CommandError(f"/{' '.join(used)} needs one of: {', '.join(s['name'] for s in _subcommands(node))}.")
    schema = {o["name"]: o for o in node.get("options", [])}
    values: dict[str, Any] = {}
    for name, raw in typed.options:
        option = schema.get(name)
        if option is None:
            known = ", ".join(schema) or "none"
            raise CommandError(f"/{' '.join(used)} has no option {name!r} (options: {known}).")
        if option["type"] == ATTACHMENT:
            raise CommandError(f"{name}: attach the file with the + button instead of typing it.")
        values[name] = value_of(option, raw)
    attachment = next((n for n, o in schema.items() if o["type"] == ATTACHMENT), None)
    if attachment and has_file:
        values[attachment] = None  # the caller puts the file here
    missing = [n for n, o in schema.items() if o.get("required") and n not in values]
    if missing:
        hint = " (attach it with the + button)" if missing == [attachment] else ""
        raise CommandError(f"Missing required option{'s' if len(missing) > 1 else ''}: {', '.join(missing)}{hint}.")
    return Parsed(name=" ".join(used), options=values, attachment=attachment if has_file else None)


@dataclass
class Focus:
    """The option whose value is being typed."""

    command: str  # "compose", or "model load"
    option: dict[str, Any]  # its spec
    value: str  # typed so far
    before: str  # the text up to the value: a chosen value goes after it
    others: dict[str, Any]  # the other options typed so far, as values of their types (what the bot sees)


def focused(specs: list[dict[str, Any]], text: str) -> Focus | None:
    """When the cursor is in an option's value, that option; None elsewhere."""
    typed = split(text)
    if not typed.options or text.endswith((" ", "\t")) and typed.options[-1][1].strip():
        return None
    try:
        node, used = leaf(specs, typed.path)
    except CommandError:
        return None
    name, raw = typed.options[-1]
    schema = {o["name"]: o for o in node.get("options", [])}
    if name not in schema:
        return None
    others = {}
    for key, other in typed.options[:-1]:
        if key in schema and schema[key]["type"] != ATTACHMENT:
            with contextlib.suppress(CommandError):  # an unfinished value is left out, as Discord's client does
                others[key] = value_of(schema[key], other)
    before = text[: text.rfind(name + ":") + len(name) + 1]
    return Focus(" ".join(used), schema[name], raw.strip(), before, others)


def suggest(specs: list[dict[str, Any]], text: str) -> list[Suggestion]:
    """What the popup lists for ``text``; an autocomplete option's values come from the bot, not here."""
    text = text.lstrip()
    if not text.startswith("/"):
        return []
    typed = split(text)
    if not typed.path and not typed.options:  # "/co"
        return [Suggestion(f"/{s['name']}", s.get("description", ""), f"/{s['name']} ")
                for s in specs if s["name"].startswith(typed.trailing)][:MAX_SUGGESTIONS]
    try:
        node, used = leaf(specs, typed.path or [typed.trailing])
    except CommandError:
        return []
    prefix = "/" + " ".join(used)
    if len(used) < len(typed.path):
        return []
    if _subcommands(node):
        word = typed.trailing if typed.path else ""
        return [Suggestion(f"{prefix} {s['name']}", s.get("description", ""), f"{prefix} {s['name']} ")
                for s in _subcommands(node) if s["name"].startswith(word)]
    if not typed.path:  # "/compose" without a space yet
        return [Suggestion(prefix, node.get("description", ""), prefix + " ")]
    unused = [o for o in node.get("options", []) if o["name"] not in {n for n, _ in typed.options}]
    word = typed.trailing
    if typed.options and not text.endswith((" ", "\t")):
        last = typed.options[-1][1].split()
        word = last[-1].lower() if len(last) > 1 else ""  # "style:zelda ba": "ba" may begin an option name
    if word and any(o["name"].startswith(word) for o in unused) or not typed.options or text.endswith((" ", "\t")):
        head = text[: len(text) - len(word)] if word else text
        head += "" if head.endswith((" ", "\t")) else " "
        unused = sorted((o for o in unused if o["name"].startswith(word)), key=lambda o: not o.get("required"))
        return [Suggestion(o["name"] + ("" if o.get("required") else " (optional)"),
                           "attach the file with +" if o["type"] == ATTACHMENT else o.get("description", ""),
                           head if o["type"] == ATTACHMENT else f"{head}{o['name']}:")
                for o in unused][:MAX_SUGGESTIONS]
    focus = focused(specs, text)
    if focus is None:
        return []
    option, value, before = focus.option, focus.value, focus.before
    if option.get("choices"):
        return [Suggestion(c["name"], option["name"], f"{before}{c['value']} ")
                for c in option["choices"] if value.lower() in c["name"].lower()][:MAX_SUGGESTIONS]  # name holds value
    if option["type"] == BOOLEAN:
        return [Suggestion(word, option["name"], f"{before}{word} ")
                for word in ("True", "False") if word.lower().startswith(value.lower())]
    return []
