"""Plugin options: declared once with types and defaults, checked, merged in one order.

Every plugin (backend, task, embedder, producer) takes its options as keyword arguments of
its factory. A plugin *declares* them in one of two ways:

* an ``Options`` dataclass on its class (``class MyTask(Task): Options = MyTaskOptions``):
  its fields are the options, with their types and defaults;
* otherwise, the keyword parameters of its class's ``__init__`` (after ``model`` for a
  backend), with their annotations and defaults.

The plugin's registration names the class (or the dataclass) with ``options=``, either the
object or a ``"module:attribute"`` string imported only when the plugin is built::

    register("mytask", _factory, description="...", options="my_plugin.task:MyTask")

A registration without ``options=`` (or a class whose ``__init__`` takes only ``**options``)
declares nothing: its options are passed through unchecked, as before.

Precedence (highest first), the same for every plugin kind::

    command line  >  model family  >  experiment / config group entry  >  declared defaults

* *command line*: ``backend.K=V`` (``task.K=V``, ``producer.K=V``) given to ``hotmess run``;
* *model family*: a backend option set in ``models.<family>`` or its size entry (backends
  only; such keys are then taken out of ``ModelSpec.options``, so that the backend sees each
  option once);
* *experiment / config group entry*: ``conf/<group>/<name>.yaml`` as overridden by the
  experiment's ``<group>:`` block (Hydra composes the two);
* *declared defaults*: the dataclass's or the constructor's defaults.

An option no layer sets is not passed (the constructor's default applies). An unknown
option is refused with the list of valid ones, naming where it came from; a value of the
wrong type is refused naming the option and the type (``docs/design.md``, "Options and
precedence").
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hotmess.core.experiment import ConfigError

_MISSING = inspect.Parameter.empty


class OptionsError(ConfigError):
    """An unknown option or a value of the wrong type (the message names both)."""


@dataclass(frozen=True)
class Declared:
    """The options a plugin declares.

    Attributes
    ----------
    fields : dict
        Option name -> (annotation or ``Any``, default or ``inspect.Parameter.empty``).
    open : bool
        Options beyond ``fields`` are passed on (the constructor takes ``**options``).
    """

    fields: dict[str, tuple[Any, Any]]
    open: bool = False


def _load(target: Any) -> Any:
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
        return obj
    return target


def declared(target: Any, *, skip: int = 0) -> Declared | None:
    """The options ``target`` declares, or ``None`` when it declares none.

    Parameters
    ----------
    target : type, dataclass, callable or str
        A plugin class (its ``Options`` dataclass, else its ``__init__``), an options
        dataclass, a callable, or ``"module:attribute"`` naming one of these.
    skip : int
        Leading positional parameters that are not options (1 for a backend's ``model``).
    """
    target = _load(target)
    if target is None:
        return None
    opts = getattr(target, "Options", None)
    if isinstance(opts, type) and dataclasses.is_dataclass(opts):
        target = opts
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        hints = _hints(target)
        return Declared({f.name: (hints.get(f.name, Any), _default(f)) for f in dataclasses.fields(target)})
    if isinstance(target, type):
        # a constructor that passes **kwargs on to its base declares the base's options too
        fields: dict[str, tuple[Any, Any]] = {}
        is_open = False
        for klass in target.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            got = _signature_fields(init, skip=skip)
            if got is None:
                return None
            for name, spec in got[0].items():
                fields.setdefault(name, spec)
            is_open = got[1]
            if not is_open:
                break
        return Declared(fields, is_open) if fields else None
    got = _signature_fields(target, skip=skip)
    if got is None or not got[0]:
        return None
    return Declared(*got)


def _signature_fields(func: Any, *, skip: int) -> tuple[dict[str, tuple[Any, Any]], bool] | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    hints = _hints(func)
    fields, is_open = {}, False
    for i, p in enumerate(params):
        if p.kind is p.VAR_KEYWORD:
            is_open = True
        elif p.kind is p.VAR_POSITIONAL or (i < skip and p.kind is p.POSITIONAL_OR_KEYWORD):
            continue
        elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            fields[p.name] = (hints.get(p.name, Any), p.default)
    return fields, is_open


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return _MISSING


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # noqa: BLE001 - unresolvable annotations: no type checks
        return {}


def conforms(value: Any, tp: Any) -> bool:
    """Whether a config value fits an annotation (``Any``, ``None``, bool, int, float, str,
    lists / tuples / sequences, dicts / mappings, unions, ``Literal``); unknown annotations
    accept everything. An int fits ``float``; a bool fits only ``bool``."""
    if tp is Any or tp is inspect.Parameter.empty or tp is object:
        return True
    if tp is None or tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return any(conforms(value, a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    base = origin or tp
    if base in (list, tuple, Sequence, Iterable, typing.Sequence):
        if not isinstance(value, list | tuple):
            return False
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return len(args) != 1 or all(conforms(v, args[0]) for v in value)
    if base in (dict, Mapping, typing.Mapping):
        return isinstance(value, Mapping)
    return True


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) if isinstance(tp, type) else str(tp).replace("typing.", "")


def resolve(
    target: Any,
    layers: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    where: str,
    skip: int = 0,
) -> dict[str, Any]:
    """Merge option layers (lowest precedence first) and check them against ``target``.

    Parameters
    ----------
    target : see :func:`declared`
    layers : sequence of (label, mapping)
        E.g. ``[("backend config", {...}), ("model family gemma3", {...}),
        ("command line", {...})]``; a later layer wins. Labels name the source in errors.
    where : str
        The plugin, for messages (``"backend 'hf'"``).
    skip : int
        See :func:`declared`.

    Returns
    -------
    dict
        The options to pass to the factory.

    Raises
    ------
    OptionsError
        An option the plugin does not declare (listing the valid ones), or a value whose
        type does not fit the declaration.
    """
    decl = declared(target, skip=skip)
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for label, layer in layers:
        for key, value in (layer or {}).items():
            merged[key] = value
            source[key] = label
    if decl is None:
        return merged
    if not decl.open:
        unknown = [k for k in merged if k not in decl.fields]
        if unknown:
            bad = ", ".join(f"{k!r} (from {source[k]})" for k in unknown)
            raise OptionsError(f"{where}: unknown option(s) {bad}; valid options: {sorted(decl.fields)}")
    for key, value in merged.items():
        if key in decl.fields and not conforms(value, decl.fields[key][0]):
            raise OptionsError(f"{where}: option {key!r} = {value!r} (from {source[key]}) is not of type "
                               f"{_type_name(decl.fields[key][0])}")
    missing = [k for k, (_, default) in decl.fields.items() if default is _MISSING and k not in merged]
    if missing:
        raise OptionsError(f"{where}: required option(s) {missing} not set")
    return merged


def command_line(overrides: Iterable[str], group: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The options of config group ``group`` given on the command line (``group.K=V``), with
    their composed values from ``entry``."""
    out = {}
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.startswith(group + ".") and "=" in o:
            name = key[len(group) + 1:].split(".", 1)[0]
            if name in entry:
                out[name] = entry[name]
    return out
