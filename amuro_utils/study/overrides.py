"""Steer a run without editing Python: change a profile's fields from the command line, a notebook parameter or a
profile file, checked against the typed profile (amuro_utils.config.profiles).

One syntax everywhere, `field=value`, dotted into nested settings:

    eval_limit=5   seeds=1,2   methods=full,lora   keep_weights=true   overtraining_pair=none
    sensitivity.tokens=1024   lora.rank=16   instruction.train.lr=1e-3
    tasks.mnli.n_train=64   tasks.*.train.epochs=2   (a task by name, or every task)

- `./run_all.sh --set eval_limit=5 --set seeds=1,2` (also `python -m amuro_utils.run.runner`, `amuro_utils.run.slurm`);
- a notebook: `papermill … -p overrides "eval_limit=5;seeds=1,2"` (assignments separated by ';');
- a profile file (TOML, or JSON with the same keys) for a whole new study: `./run_all.sh --profile-file study.toml`,
  or `-p profile study.toml` in a notebook:

      profile = "tiny"     # the named profile it starts from
      name = "my_study"    # its results/ and figures/ folder (default: the file's name without extension)
      eval_limit = 50
      seeds = [1, 2]
      [sensitivity]
      tokens = 1024
      [tasks.mnli]
      n_train = 64

Values: integers, floats, booleans (true / false), `none` where a field may be None, text; a tuple as
comma-separated values (TOML / JSON: an array); a mapping field by key (`sensitivity.also.relative=0.01,0.1`), or
emptied (`sensitivity.also=`). An unknown field, a wrong type or a value outside a field's choices is refused with the
valid fields, the expected type or the choices. Overridden values are the profile's own fields, so they enter the
identity of every result they change: results made with and without an override never answer for each other.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..config.profiles import (
    FORMATS,
    METHODS,
    NOISE_SCALINGS,
    PROFILES,
    Profile,
    ckpt_step,
    get_profile,
    results_source_kind,
    tiny_rungs,
)
from ..models import lmeval

PROFILE_FILE_SUFFIXES = (".toml", ".json")
DTYPES = ("float32", "bfloat16", "float16")
# The values a text field may take (by field name, wherever it is nested); ckpts: the ladder's rung labels.
CHOICES = {"methods": METHODS, "formats": FORMATS, "device": ("cpu", "cuda"), "eval_dtype": DTYPES, "dtype": DTYPES,
           "data_source": ("offline", "hub"),
           "generation_backend": ("transformers", "vllm"), "scaling": tuple(NOISE_SCALINGS),
           "loss_normalization": ("sequence_mean", "token_mean")}
# Not settings: the results folder (a profile file's `name` gives a study its own) and how the profile was made.
FIXED = {"name": "give a new study its own name in a profile file (--profile-file)", "params": "set by this module"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class OverrideError(ValueError):
    """An override that the typed profile refuses (unknown field, wrong type, value outside its choices)."""


# ---------------------------------------------------------------------------------------------------------------
# the syntax


def parse(overrides: str | Sequence[str] | None) -> list[tuple[str, object]]:
    """(dotted field, value text) of each assignment: 'a=1;b.c=x,y', or one assignment per item of a sequence."""
    if overrides is None:
        return []
    items = overrides.split(";") if isinstance(overrides, str) else list(overrides)
    out = []
    for item in items:
        if not item.strip():
            continue
        field, sep, value = item.partition("=")
        if not sep or not field.strip():
            raise OverrideError(f"override {item!r} is not FIELD=VALUE (e.g. eval_limit=5, sensitivity.tokens=1024)")
        out.append((field.strip(), value.strip()))
    return out


def text(assignments: Sequence[tuple[str, object]]) -> str:
    """The assignments as one notebook parameter: 'a=1;b=x,y' (JSON-like values of a profile file as their text)."""
    def show(value) -> str:
        if isinstance(value, (list, tuple)):
            return ",".join(show(v) for v in value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "none" if value is None else str(value)

    for field, value in assignments:
        if ";" in show(value):
            raise OverrideError(f"the value of {field} contains ';', which separates overrides: set it in a profile file")
    return ";".join(f"{field}={show(value)}" for field, value in assignments)


# ---------------------------------------------------------------------------------------------------------------
# applying them to the typed profile


def apply(profile: Profile, assignments: Sequence[tuple[str, object]]) -> Profile:
    """`profile` with each (dotted field, value) assignment applied, in order, checked against the field's type."""
    before = profile
    for field, value in assignments:
        parts = field.split(".")
        if parts[0] in FIXED:
            raise OverrideError(f"{parts[0]!r} cannot be overridden: {FIXED[parts[0]]}")
        profile = _set(profile, parts, value, field, profile)
    if not any(field.split(".")[0] == "rungs" for field, _ in assignments):
        profile = _rescaled_rungs(before, profile)
    return profile


def _rescaled_rungs(before: Profile, after: Profile) -> Profile:
    """`after` with its rungs moved to the paper's fractions of its own pre-training when an override changed the
    tiny ladder's length and the rungs were the ones profiles.tiny_rungs places on the old length (else the labels
    would keep the old steps: `step342000` at step 139 of an 800-step ladder)."""
    if before.tiny_ladder is None or after.tiny_ladder is None or not before.rungs:
        return after
    old, new = before.tiny_ladder.total_steps, after.tiny_ladder.total_steps
    if old == new:
        return after
    early = tuple(ckpt_step(before.rungs[label]) for label in ("step1000", "step18000") if label in before.rungs)
    if len(early) != 2 or None in early or dict(before.rungs) != tiny_rungs(old, early):
        return after
    try:
        return dataclasses.replace(after, rungs=tiny_rungs(new, early))
    except ValueError as err:
        raise OverrideError(f"tiny_ladder.total_steps={new}: {err}") from None


def _set(obj, parts: list[str], value, path: str, profile: Profile):
    """`obj` (a settings dataclass) with the field `parts` set to `value`."""
    name, rest = parts[0], parts[1:]
    fields = {f.name for f in dataclasses.fields(obj)} - set(FIXED)
    if name not in fields:
        near = difflib.get_close_matches(name, fields, n=1)
        where = path[: -len(".".join(parts))].rstrip(".") or type(obj).__name__
        raise OverrideError(f"unknown field {name!r} in {where}" + (f" (did you mean {near[0]!r}?)" if near else "")
                            + f"; fields: {', '.join(sorted(fields))}")
    hint = typing.get_type_hints(type(obj))[name]
    current = getattr(obj, name)
    if not rest:
        new = _convert(value, hint, path, name, profile)
    else:
        new = _descend(current, hint, rest, value, path, profile)
    try:
        return dataclasses.replace(obj, **{name: new})
    except (TypeError, ValueError) as err:
        raise OverrideError(f"{path}={value!r}: {err}") from None


def _descend(current, hint, rest: list[str], value, path: str, profile: Profile):
    """The new value of a nested field: a dataclass's field, a task's (by name or '*') or a mapping's key."""
    inner = _without_none(hint)
    origin = typing.get_origin(inner)
    if dataclasses.is_dataclass(inner):
        if current is None:
            raise OverrideError(f"{path}: profile {profile.name!r} has no {inner.__name__} to change")
        return _set(current, rest, value, path, profile)
    if origin is tuple and dataclasses.is_dataclass(typing.get_args(inner)[0]):  # tasks: pick them by name
        names = [item.name for item in current]
        if rest[0] != "*" and rest[0] not in names or len(rest) < 2:
            raise OverrideError(f"{path}: name one of {names} or '*' (all), then its field, e.g. "
                                f"{path.split('.')[0]}.{names[0] if names else '*'}.n_train=64")
        return tuple(_set(item, rest[1:], value, path, profile) if rest[0] in ("*", item.name) else item
                     for item in current)
    if origin is Mapping and len(rest) == 1:
        key_type, value_type = typing.get_args(inner)
        return {**dict(current or {}), rest[0]: _convert(value, value_type, path, rest[0], profile)}
    raise OverrideError(f"{path}: {path[: -len('.'.join(rest)) - 1]} has no field {'.'.join(rest)!r}; set it whole")


def _without_none(hint):
    """X of `X | None` (the hint itself otherwise)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if _is_union(hint) and len(args) == 1 else hint


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _convert(value, hint, path: str, name: str, profile: Profile):
    """`value` (text from the command line, or a TOML / JSON value) as the type `hint`, within the field's choices."""
    if _is_union(hint):
        if value is None or isinstance(value, str) and value.lower() in ("none", "null"):
            if type(None) in typing.get_args(hint):
                return None
        return _convert(value, _without_none(hint), path, name, profile)
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        items = _items(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], path, name, profile) for v in items)
        if len(items) != len(args):
            raise OverrideError(f"{path} takes {len(args)} values, got {len(items)}: {value!r}")
        return tuple(_convert(v, a, path, name, profile) for v, a in zip(items, args))
    if origin is Mapping:
        if value in ("", {}):
            return {}
        if isinstance(value, dict):
            key_type, value_type = typing.get_args(hint)
            return {k: _convert(v, value_type, path, name, profile) for k, v in value.items()}
        raise OverrideError(f"{path} is a mapping: set one key ({path}.KEY=VALUE) or empty it ({path}=)")
    return _choice(_scalar(value, hint, path), path, name, profile)


def _items(value) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [] if not value.strip() else [v.strip() for v in value.split(",")]
    return [value]


def _scalar(value, hint, path: str):
    """A bool, int, float or str from its text or its TOML / JSON value; a wrong type names the one expected."""
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(hint)
    if expected is None:
        raise OverrideError(f"{path} ({hint}) cannot be set from an override; change it in profiles.py")
    try:
        if isinstance(value, str):
            if hint is bool:
                if value.lower() not in _TRUE + _FALSE:
                    raise ValueError
                return value.lower() in _TRUE
            return hint(value) if hint is not int else int(value.replace("_", ""))
        if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise ValueError
    except ValueError:
        raise OverrideError(f"{path} expects {expected}, got {value!r}") from None


def _choice(value, path: str, name: str, profile: Profile):
    """`value` if the field has no fixed choices or it is one of them (ckpts: the ladder's rung labels)."""
    if name == "results_source":
        try:
            results_source_kind(value)
        except ValueError as err:
            raise OverrideError(f"{path}: {err}") from None
    choices = CHOICES.get(name)
    if name == "ckpts" and profile.rungs:
        choices = profile.rung_labels()
    if choices is not None and value not in choices:
        raise OverrideError(f"{path}: {value!r} is not one of {list(choices)}")
    return value


# ---------------------------------------------------------------------------------------------------------------
# profiles: named, from a file, with overrides


def is_profile_file(profile: str) -> bool:
    """Whether `profile` names a profile file (.toml / .json) rather than a named profile."""
    return str(profile).endswith(PROFILE_FILE_SUFFIXES)


def read_file(path: str | Path) -> tuple[str, str, list[tuple[str, object]]]:
    """(the named profile it starts from, the study's name, its assignments) of a TOML or JSON profile file."""
    path = Path(path)
    if not path.is_file():
        raise OverrideError(f"profile file {path} not found")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("profile"), str):
        raise OverrideError(f"profile file {path} must name the profile it starts from: profile = \"tiny\" "
                            f"(one of {sorted(PROFILES)})")
    name = data.pop("name", path.stem)
    base = data.pop("profile")
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in PROFILES:
        raise OverrideError(f"profile file {path}: name {name!r} must be a folder name (letters, digits, '.', '_', "
                            f"'-') that is not a named profile's ({sorted(PROFILES)})")
    return base, name, _flatten(data)


def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested tables as dotted assignments ({'sensitivity': {'tokens': 1}} -> [('sensitivity.tokens', 1)])."""
    out = []
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out += _flatten(value, path) if isinstance(value, dict) and value else [(path, value)]
    return out


SELF_DESCRIBING = ("description", "figure_note")  # fields that describe the study rather than change it


def load(profile: str | Path, overrides: str | Sequence[str] | None = None) -> Profile:
    """The profile called `profile`, or the study of a profile file (.toml / .json), with `overrides` applied;
    it remembers how to rebuild itself (`Profile.params`) so that every notebook of a run gets the same one."""
    sets = parse(overrides)
    if is_profile_file(str(profile)):
        base_name, name, from_file = read_file(profile)
        base = dataclasses.replace(get_profile(base_name), name=name)
        source = str(Path(profile).resolve())
    else:
        base, from_file, source = get_profile(str(profile)), [], str(profile)
    # a read results source (lm-eval output, Pythia's evaluations) decides the checkpoints and shots: lmeval.bind
    out = lmeval.bind(apply(apply(base, from_file), sets))
    if not sets and not from_file:
        return out
    # what was changed, named on every figure and in the description (the study's own words are not repeated)
    changed = text([(k, v) for k, v in from_file + sets if k not in SELF_DESCRIBING])
    out = dataclasses.replace(out, description=f"{out.description} Overrides: {changed}." if changed else out.description,
                              figure_note=(f"{out.figure_note} ({changed})" if out.figure_note else changed) if changed
                              else out.figure_note,
                              params=(("profile", source),) + ((("overrides", text(sets)),) if sets else ()))
    return out


def add_arguments(parser, default: str) -> None:
    """The profile options every command line of the package takes: --profile, --profile-file, --set."""
    parser.add_argument("--profile", default=default,
                        help=f"a named profile ({', '.join(sorted(PROFILES))}) or a profile file (.toml / .json)")
    parser.add_argument("--profile-file", metavar="FILE", help="a profile file (.toml / .json): a new study")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one profile field (repeatable): eval_limit=5, seeds=1,2, sensitivity.tokens=1024")


def from_args(args) -> Profile:
    """The profile the options of `add_arguments` name (OverrideError / ValueError on bad input)."""
    return load(args.profile_file or args.profile, args.overrides)
