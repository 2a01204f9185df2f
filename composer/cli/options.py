"""Click options built from ``GenerationRequest``'s declarations (defaults, ranges, choices, help).

    @click.command()
    @request_options("style", "bars", "form")
    @sound_option
    def compose(sound, **params):
        request = request_from_options(params)
"""

from __future__ import annotations

from typing import Any, Callable

import click

from composer.render.presets import DEFAULT_SOUND, SOUNDS
from composer.generate.request import GenerationRequest, Spec
from composer.nn.model import PRECISIONS

# The infiller's precision (``choose_precision``), for the commands that time or measure composing.
precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
    help="The infiller's precision (auto: bfloat16 where this CPU multiplies it natively, else float32).")


def _parse_words(spec: Spec) -> Callable:
    def parse(ctx, option, value):
        words = tuple(w.strip() for w in (value or "").split(",") if w.strip()) if isinstance(value, str) else value
        unknown = [w for w in words if w not in spec.choices]
        if unknown:
            raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {', '.join(spec.choices)}")
        return words
    return parse


def _option(name: str, spec: Spec, default: Any) -> Callable:
    flag = "--" + name.replace("_", "-")
    kwargs: dict[str, Any] = {"help": spec.help, "default": default, "show_default": default is not None}
    if spec.kind is bool:
        kwargs.update(is_flag=True, show_default=False)
    elif spec.kind is tuple:  # comma-separated words
        kwargs.update(default=",".join(default), callback=_parse_words(spec), show_default=True)
        kwargs["help"] += f" ({', '.join(spec.choices)}; separate with commas)"
    elif spec.choices is not None:
        kwargs["type"] = click.Choice(list(spec.choices))
    elif spec.low is not None:
        bounds = (spec.kind(spec.low), spec.kind(spec.high))
        kwargs["type"] = click.IntRange(*bounds) if spec.kind is int else click.FloatRange(*bounds)
    else:
        kwargs["type"] = spec.kind
    if spec.suggestions:
        kwargs["help"] += f" ({', '.join(spec.suggestions)}...)"
    return click.option(flag, name, **kwargs)


def request_options(*names: str, **defaults: Any) -> Callable:
    """Decorator adding one option per named parameter; ``defaults`` override the declared ones
    for this command (e.g. a remix's length comes from its file)."""
    specs = GenerationRequest.specs()

    def decorate(command: Callable) -> Callable:
        for name in reversed(names):
            default = defaults[name] if name in defaults else GenerationRequest.default(name)
            command = _option(name, specs[name], default)(command)
        return command

    return decorate


sound_option = click.option(
    "--sound", default=DEFAULT_SOUND, show_default=True, type=click.Choice(list(SOUNDS), case_sensitive=False),
    help="How it sounds. " + " ".join(f"{name}: {preset.description}" for name, preset in SOUNDS.items()))


def request_from_options(params: dict[str, Any], **fields: Any) -> GenerationRequest:
    """The request for the parameters a command received (only the declared ones)."""
    specs = GenerationRequest.specs()
    return GenerationRequest(**{k: v for k, v in params.items() if k in specs}, **fields)
