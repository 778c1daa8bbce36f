"""The method registry: one name space for both kinds of search method.

Black-box methods (:class:`harness.protocol.BlackBoxMethod`) register themselves with the
:func:`register_method` class decorator on import. Supernet methods
(:class:`harness.supernet.method.SupernetMethod`) are registered by location with
:func:`register_supernet_method` and imported on first use, so that listing the methods
(:func:`method_names`, :func:`method_kind`) never imports torch. :func:`get_method` and
:func:`make_method` build a method by name; ``did you mean`` errors cover both kinds.

A supernet entry registered with its own Config defaults (``darts_v2`` = DARTS with
``order=2``) becomes a generated subclass named ``_variant_<name>`` that lives in this module
(found again by :mod:`pickle` through the module ``__getattr__``).

This module sits above :mod:`harness.protocol` (whose ``BlackBoxMethod`` it checks against)
and below the methods: :mod:`harness.protocol` never imports it. The built-in methods are
loaded by name (``importlib``) on first listing, as plug-ins are.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from harness.errors import ConfigError, unknown

if TYPE_CHECKING:
    from harness.protocol import BlackBoxMethod
    from harness.supernet.method import SupernetMethod

__all__ = [
    "KINDS",
    "get_method",
    "make_method",
    "method_kind",
    "method_names",
    "register_method",
    "register_supernet_method",
]

logger = logging.getLogger(__name__)

#: The two kinds of method: black-box (:class:`~harness.protocol.BlackBoxMethod`, ask/tell
#: against an oracle) and supernet (:class:`~harness.supernet.method.SupernetMethod`, update
#: rules in a harness-owned loop).
KINDS: tuple[str, ...] = ("blackbox", "supernet")


@dataclass(frozen=True)
class _LazyEntry:
    """A supernet method registered by location: ``target`` is ``"module:Class"``, imported on
    first use (so listing names never imports torch); ``defaults`` override Config defaults."""

    target: str
    defaults: tuple[tuple[str, Any], ...]


_REGISTRY: dict[str, type[Any]] = {}
_LAZY: dict[str, _LazyEntry] = {}
_KIND: dict[str, str] = {}
#: Classes built for registry entries with their own defaults, by qualified name (pickling).
_VARIANTS: dict[str, type[Any]] = {}
_VARIANT_PREFIX = "_variant_"
M = TypeVar("M", bound=type[Any])


def _frozen_config(cls: type[Any]) -> None:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{cls.__qualname__} needs a non-empty class attribute 'name'")
    config = getattr(cls, "Config", None)
    if not (dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen):  # type: ignore[union-attr]
        raise ConfigError(f"{cls.__qualname__}.Config must be a frozen dataclass")


def _kind_of(cls: type[Any]) -> str:
    from harness.protocol import BlackBoxMethod  # the protocol module imports this one

    if isinstance(cls, type) and issubclass(cls, BlackBoxMethod):
        return "blackbox"
    from harness.supernet.method import SupernetMethod as _Supernet  # imports torch

    if isinstance(cls, type) and issubclass(cls, _Supernet):
        return "supernet"
    raise ConfigError(f"{cls!r} is neither a BlackBoxMethod nor a SupernetMethod subclass")


def register_method(cls: M) -> M:
    """Class decorator: add a method (black-box or supernet) to the registry under ``cls.name``."""
    _frozen_config(cls)
    name = cls.name
    old = _REGISTRY.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ConfigError(f"method name {name!r} is taken by {old.__module__}.{old.__qualname__}")
    if name in _LAZY:
        raise ConfigError(f"method name {name!r} is taken by {_LAZY[name].target}")
    _KIND[name] = _kind_of(cls)
    _REGISTRY[name] = cls
    return cls


def register_supernet_method(name: str, target: str, **defaults: Any) -> None:
    """Register the supernet method class at ``target`` (``"module:Class"``) as ``name``, without
    importing it. ``defaults`` replace defaults of its Config (e.g. ``order=2`` for DARTS-V2);
    the class returned by :func:`get_method` then has ``name`` as its ``name``."""
    module, _, qualname = target.partition(":")
    if not module or not qualname:
        raise ConfigError(f"target must look like 'package.module:Class', got {target!r}")
    entry = _LazyEntry(target, tuple(sorted(defaults.items())))
    taken = _LAZY.get(name)
    if (taken is not None and taken != entry) or name in _REGISTRY:
        raise ConfigError(f"method name {name!r} is already registered")
    _LAZY[name] = entry
    _KIND[name] = "supernet"


def _variant(name: str, base: type[Any], defaults: tuple[tuple[str, Any], ...]) -> type[Any]:
    """A subclass of ``base`` named ``name`` whose Config has the given defaults."""
    allowed = {f.name: f for f in dataclasses.fields(base.Config)}
    for key, _ in defaults:
        if key not in allowed:
            raise ConfigError(unknown(f"hyperparameter of {base.__qualname__}", key, allowed))
    qualname = _VARIANT_PREFIX + name
    config = dataclasses.make_dataclass(
        "Config",
        [(k, allowed[k].type, dataclasses.field(default=v)) for k, v in defaults],
        bases=(base.Config,),
        frozen=True,
        namespace={"__module__": __name__, "__qualname__": f"{qualname}.Config"},
    )
    doc = f"{base.__qualname__} registered as {name!r} (Config defaults {dict(defaults)})."
    attrs = {"name": name, "Config": config, "__module__": __name__, "__qualname__": qualname}
    return type(qualname, (base,), {**attrs, "__doc__": doc})


def _resolve(name: str) -> type[Any]:
    entry = _LAZY[name]
    module_name, _, qualname = entry.target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    _frozen_config(obj)
    if _kind_of(obj) != "supernet":
        raise ConfigError(f"{entry.target} is not a SupernetMethod")
    if entry.defaults or obj.name != name:
        obj = _variant(name, obj, entry.defaults)
        _VARIANTS[obj.__qualname__] = obj
    _REGISTRY[name] = obj
    return obj


def _load_builtin() -> None:
    # The built-in methods register themselves on import of the ``methods`` package.
    importlib.import_module("methods")


def method_names(kind: str | None = None) -> tuple[str, ...]:
    """Names of the registered methods (built-in ones included), sorted; ``kind``:
    ``"blackbox"`` or ``"supernet"`` for one kind, None for all. Never imports torch."""
    _load_builtin()
    if kind is not None and kind not in KINDS:
        raise ConfigError(unknown("method kind", kind, KINDS))
    return tuple(sorted(n for n, k in _KIND.items() if kind is None or k == kind))


def method_kind(name: str) -> str:
    """``"blackbox"`` or ``"supernet"`` for registered method ``name`` (no import of torch)."""
    if name not in _KIND:
        _load_builtin()
    if name not in _KIND:
        raise ConfigError(unknown("method", name, sorted(_KIND)))
    return _KIND[name]


@overload
def get_method(name: str, kind: Literal["blackbox"]) -> type[BlackBoxMethod]: ...
@overload
def get_method(name: str, kind: Literal["supernet"]) -> type[SupernetMethod]: ...
@overload
def get_method(name: str, kind: None = None) -> type[Any]: ...
def get_method(name: str, kind: str | None = None) -> type[Any]:
    """The method class registered as ``name``; with ``kind``, it must be of that kind.
    Supernet methods are imported here on first use."""
    if method_kind(name) != (kind or _KIND[name]):
        raise ConfigError(
            f"method {name!r} is a {_KIND[name]} method, not {kind}; {kind} methods: "
            + ", ".join(method_names(kind))
        )
    return _REGISTRY[name] if name in _REGISTRY else _resolve(name)


def make_method(name: str, **overrides: Any) -> Any:
    """An instance of method ``name`` (either kind) whose config is the defaults with
    ``overrides``; unknown hyperparameters raise :class:`ConfigError`."""
    cls = get_method(name)
    allowed = [f.name for f in dataclasses.fields(cls.Config)]
    for key in overrides:
        if key not in allowed:
            raise ConfigError(unknown(f"hyperparameter of {name}", key, allowed))
    try:
        return cls(cls.Config(**overrides))
    except TypeError as err:  # e.g. a non-comparable value in a validation check
        raise ConfigError(f"bad hyperparameters for {name}: {err}") from None


def __getattr__(name: str) -> Any:
    if name.startswith(_VARIANT_PREFIX):  # classes of registry variants, found by pickle
        get_method(name[len(_VARIANT_PREFIX) :])
        return _VARIANTS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
