"""Several processes (``accelerate launch`` / ``torchrun``): ranks, one-rank decisions, ZeRO stage, sharding.

    >>> from think2seg.core import distributed as dist
    >>> dist.rank(), dist.world_size()            # (0, 1) in a plain process
    (0, 1)
    >>> dist.decide(lambda: time_is_up())        # rank 0 decides, every rank gets its answer  # doctest: +SKIP
    >>> dist.zero_stage()                         # None without DeepSpeed; 3 under configs/accelerate/zero3.yaml
    >>> dist.shard(list(range(5)), 1, 2)          # rank 1 of 2 takes items 1 and 3
    [1, 3]

Everything here is a no-op in a single process (no ``torch.distributed`` group), so library code calls
these helpers unconditionally. The collectives (:func:`barrier`, :func:`broadcast`, :func:`gather`)
must be reached by every rank in the same order, like any collective.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from think2seg.core.errors import UserError

T = TypeVar("T")
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # a source checkout's root (configs/ lives there)


def _group() -> Any:
    import torch.distributed as td

    return td if td.is_available() and td.is_initialized() else None


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    td = _group()
    return td.get_rank() if td else 0


def world_size() -> int:
    """Number of processes in the group (1 without a process group)."""
    td = _group()
    return td.get_world_size() if td else 1


def local_rank() -> int:
    """Rank on this machine (``LOCAL_RANK`` as set by the launcher; 0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def init_from_env() -> int:
    """Join the process group a launcher describes (``WORLD_SIZE`` > 1) through accelerate's
    ``PartialState`` (NCCL on CUDA, gloo on CPU); returns the world size. Nothing happens in a plain
    process or when a group exists already. A DeepSpeed config path is made absolute first
    (:func:`resolve_deepspeed_config`)."""
    resolve_deepspeed_config()
    if _group() is None and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        import torch
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())
    return world_size()


class DeepSpeedConfigError(UserError, FileNotFoundError):
    """The DeepSpeed JSON an accelerate config names cannot be found (one line, names the file)."""


def resolve_deepspeed_config(environ: Any = None) -> str | None:
    """Make ``ACCELERATE_DEEPSPEED_CONFIG_FILE`` (what ``accelerate launch`` passes from the YAML's
    ``deepspeed_config_file``) absolute, before accelerate reads it; returns it (None when unset).

    The shipped YAMLs name ``configs/deepspeed/*.json`` relative to the repository root: launched from
    elsewhere, a relative path missing from the working directory is looked up under the project root.
    Not found there either: :class:`DeepSpeedConfigError` (one line) instead of a traceback per rank."""
    env = os.environ if environ is None else environ
    value = env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none")
    if value == "none" or env.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return None
    path = Path(value)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, PROJECT_ROOT / path]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise DeepSpeedConfigError(
            f"deepspeed_config_file {value} (from the accelerate config): not found in "
            f"{' or '.join(str(c.parent) for c in candidates)}; give an absolute path in the YAML"
        )
    env["ACCELERATE_DEEPSPEED_CONFIG_FILE"] = str(found.resolve())
    return env["ACCELERATE_DEEPSPEED_CONFIG_FILE"]


def barrier() -> None:
    td = _group()
    if td and td.get_world_size() > 1:
        td.barrier()


def broadcast(obj: T, src: int = 0) -> T:
    """``obj`` as held by rank ``src``, on every rank (any picklable object)."""
    td = _group()
    if not td or td.get_world_size() == 1:
        return obj
    box = [obj]
    td.broadcast_object_list(box, src=src)
    return box[0]


def gather(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    td = _group()
    if not td or td.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * td.get_world_size()
    td.all_gather_object(out, obj)
    return out


def decide(fn: Callable[[], T]) -> T:
    """``fn()`` evaluated on rank 0 only and broadcast: one decision for all ranks (e.g. a wall-clock
    budget, where ranks reading their own clocks can disagree by a step and deadlock in the next
    collective)."""
    return broadcast(fn() if rank() == 0 else None)


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Items ``index, index + count, ...`` of ``items``: round-robin, so ``count`` shards differ in
    length by at most one and their union (in any order) is ``items``."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: need 0 <= index < count")
    return list(items[index::count])


def zero_stage(deepspeed: Any = None, args: Any = None) -> int | None:
    """The DeepSpeed ZeRO stage of this run, or None without DeepSpeed.

    Looked up in order: the training arguments' plugin (``args.deepspeed_plugin.zero_stage``, set by
    transformers when DeepSpeed is on); accelerate's live state (the selected plugin of
    ``AcceleratorState().deepspeed_plugins``, a dict or one plugin in accelerate 1.15); the environment
    ``accelerate launch --config_file configs/accelerate/zero3.yaml`` sets (``ACCELERATE_USE_DEEPSPEED``,
    then ``ACCELERATE_DEEPSPEED_CONFIG_FILE`` or ``ACCELERATE_DEEPSPEED_ZERO_STAGE``); then
    ``deepspeed``, the trainer's ``--deepspeed`` option (a JSON file or dict). With an accelerate config,
    ``--deepspeed`` is None: the plugin comes from the environment, which is why this is not read from
    ``--deepspeed`` alone.
    """
    for plugin in (getattr(args, "deepspeed_plugin", None), _live_plugin()):
        if plugin is not None and getattr(plugin, "zero_stage", None) is not None:
            return int(plugin.zero_stage)
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        cfg_file = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none")
        if cfg_file != "none":
            stage = _stage_of(cfg_file)
            if stage is not None:
                return stage
        return int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", 2))
    if deepspeed:
        return _stage_of(deepspeed)
    return None


def _live_plugin() -> Any:
    """The selected DeepSpeed plugin of accelerate's shared state, or None (no state, no DeepSpeed)."""
    try:
        from accelerate.state import AcceleratorState
    except ImportError:  # accelerate is a dependency; keep the helper importable without it
        return None
    plugins = (AcceleratorState._shared_state or {}).get("deepspeed_plugins")
    if isinstance(plugins, dict):
        return next((p for p in plugins.values() if getattr(p, "selected", False)), None)
    return plugins


def _stage_of(config: str | Path | dict) -> int | None:
    if not isinstance(config, dict):
        config = json.loads(Path(config).read_text())
    stage = config.get("zero_optimization", {}).get("stage")
    return None if stage in (None, "auto") else int(stage)
