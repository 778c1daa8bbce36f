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

A user's methods live in their own module, a **plug-in**, found three ways:
:func:`load_plugins` (``--plugin my_module`` or ``--plugin path/to/file.py`` on the command
line), the entry-point group :data:`ENTRY_POINT_GROUP` of an installed package (loaded with the
built-ins), and :data:`PLUGINS_ENV` (plug-ins every harness process loads with the built-ins:
how the command line hands its ``--plugin`` list to worker processes). A worker of a sweep
loads the sweep's plug-ins before it resolves a method (:func:`require_method`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from harness.errors import ConfigError, did_you_mean, unknown

if TYPE_CHECKING:
    from harness.protocol import BlackBoxMethod
    from harness.supernet.method import SupernetMethod

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "PLUGINS_ENV",
    "get_method",
    "load_plugins",
    "loaded_plugins",
    "make_method",
    "method_kind",
    "method_names",
    "register_method",
    "register_supernet_method",
    "require_method",
]

logger = logging.getLogger(__name__)

#: The two kinds of method: black-box (:class:`~harness.protocol.BlackBoxMethod`, ask/tell
#: against an oracle) and supernet (:class:`~harness.supernet.method.SupernetMethod`, update
#: rules in a harness-owned loop).
KINDS: tuple[str, ...] = ("blackbox", "supernet")
#: Entry-point group of installed plug-ins: ``name = "package.module"`` (importing it registers
#: its methods) or ``name = "package.module:Class"`` (registered if its module does not).
ENTRY_POINT_GROUP = "nats_harness.methods"
#: Environment variable: plug-ins (``os.pathsep``-separated) that every harness process loads.
PLUGINS_ENV = "HARNESS_PLUGINS"
#: What to do about a method name that is not registered (the end of the error messages).
PLUGIN_HINT = (
    f"a method of your own: --plugin MODULE (or FILE.py), or an entry point in group "
    f"{ENTRY_POINT_GROUP}"
)


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


_PLUGINS: dict[str, str] = {}  # plug-in (module name or absolute file path) -> module name
_STARTED: list[str] = []  # what _load_builtin has done in this process


def _load_builtin() -> None:
    # The built-in methods register themselves on import of the ``methods`` package; installed
    # plug-ins and those named by $HARNESS_PLUGINS are loaded once per process after them.
    importlib.import_module("methods")
    if not _STARTED:
        _STARTED.append("entry points")
        _load_entry_points()
        load_plugins(p for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p)


def _load_entry_points() -> None:
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = point.load()
        except Exception as err:
            raise ConfigError(
                f"entry point {point.name} = {point.value} (group {ENTRY_POINT_GROUP}) failed "
                f"to load: {_where(err)}{type(err).__name__}: {err}"
            ) from err
        if isinstance(obj, type) and getattr(obj, "name", None) not in _REGISTRY:
            register_method(obj)


def _where(err: BaseException) -> str:
    """``"file.py:12: "`` for the innermost frame of ``err`` (where a plug-in broke)."""
    frames = traceback.extract_tb(err.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


def _plugin_key(text: str) -> str:
    """A plug-in as given (module name, or path to a ``.py`` file) -> module name or absolute
    path, so that a worker with another working directory finds the same file."""
    text = str(text).strip()
    if text.endswith(".py") or "/" in text or os.sep in text:
        return str(Path(text).expanduser().resolve())
    if not all(part.isidentifier() for part in text.split(".")):
        raise ConfigError(
            f"plug-in {text!r} is neither a module name (e.g. my_methods) nor a .py file"
        )
    return text


def _import_file(path: Path) -> str:
    if not path.is_file():
        files = sorted(p.name for p in path.parent.glob("*.py")) if path.parent.is_dir() else []
        raise ConfigError(
            f"plug-in file {path} does not exist{did_you_mean(path.name, files)}"
            + (f"; .py files there: {', '.join(files[:10])}" if files else "")
        )
    name = path.stem
    if not name.isidentifier():
        raise ConfigError(f"plug-in file {path.name}: its name must be a Python identifier")
    old = sys.modules.get(name)
    if old is not None:
        if Path(getattr(old, "__file__", "") or "").resolve() == path:
            return name
        raise ConfigError(
            f"plug-in file {path} would be imported as module {name!r}, which is already "
            f"{getattr(old, '__file__', None) or 'a built-in module'}: rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # by name, so that pickle and check_method find it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return name


def _import_plugin(key: str) -> str:
    """Import one plug-in; returns its module name. Errors say what to do."""
    try:
        if key.startswith(os.sep) or key.endswith(".py"):
            return _import_file(Path(key))
        importlib.import_module(key)
        return key
    except ConfigError:
        raise
    except ModuleNotFoundError as err:
        if err.name is None or not (key == err.name or key.startswith(f"{err.name}.")):
            raise ConfigError(f"plug-in {key} failed to import: {_where(err)}{err}") from err
        here = Path.cwd() / f"{key.split('.')[0]}.py"
        hint = (
            f"; {here.name} is in the current directory: pass ./{here.name}"
            if here.is_file()
            else ""
        )
        raise ConfigError(
            f"cannot import plug-in module {key!r}: no module {err.name!r} on the Python path "
            f"(give the path to its .py file, add its directory to PYTHONPATH, or install "
            f"it){hint}"
        ) from None
    except Exception as err:
        raise ConfigError(
            f"plug-in {key} failed to import: {_where(err)}{type(err).__name__}: {err}"
        ) from err


def load_plugins(plugins: Iterable[str]) -> tuple[str, ...]:
    """Import each plug-in (an importable module name, or a path to a ``.py`` file) so that
    the methods it registers can be named; each is imported once per process.

    Returns the plug-ins as a worker must be given them (file paths made absolute). A plug-in
    that cannot be imported, or whose import registers no method, raises :class:`ConfigError`.
    """
    keys = tuple(dict.fromkeys(_plugin_key(p) for p in plugins))
    for key in keys:
        if key in _PLUGINS:
            continue
        importlib.import_module("methods")  # built-in names are taken first
        known = set(_KIND)
        fresh = (Path(key).stem if key.endswith(".py") else key) not in sys.modules
        module = _import_plugin(key)
        if fresh and set(_KIND) == known:
            raise ConfigError(
                f"plug-in {key} registered no method: decorate its method class with "
                "@harness.registry.register_method (or call register_supernet_method)"
            )
        _PLUGINS[key] = module
        logger.info("plug-in %s loaded (module %s)", key, module)
    return keys


def loaded_plugins() -> tuple[str, ...]:
    """The plug-ins loaded in this process, in order (as :func:`load_plugins` returns them)."""
    return tuple(_PLUGINS)


def require_method(name: str, plugins: Iterable[str] = ()) -> None:
    """Load ``plugins``, then raise :class:`ConfigError` unless ``name`` is registered: the
    check a worker makes before it runs a method, naming the plug-ins it loaded."""
    keys = load_plugins(plugins)
    _load_builtin()
    if name in _KIND:
        return
    given = ", ".join(keys) or "none"
    raise ConfigError(
        f"method {name!r} is not registered in this worker (process {os.getpid()}); plug-ins "
        f"it was given: {given}; loaded here: {', '.join(_PLUGINS) or 'none'}. The module that "
        f"registers {name!r} must reach every worker: {PLUGIN_HINT}"
    )


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
        raise ConfigError(unknown("method", name, sorted(_KIND)) + f"; {PLUGIN_HINT}")
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
