"""Checkpoints that survive being killed at any moment, and never execute code on load.

``checkpoint.safetensors`` is the single source of truth: model weights, optimiser tensors
and RNG states as tensors, and the rest (step, epoch, optimiser hyper-parameters, schedule
state, early-stopping counters) as JSON in the file's metadata. It is written atomically,
so a kill leaves the previous checkpoint or the new one. ``checkpoint.json`` is a readable
mirror written right after, carrying the SHA-256 of the tensor file; on resume it must agree
with the tensor file (a kill between the two writes is recognised and healed, an edit is
refused).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ..errors import VaelabError
from ..fileio import atomic_write_json, read_bytes
from ..weights import load_weights, save_tensors
from ..weights import sha256 as _sha256

CHECKPOINT_FORMAT = 1


# -- optimiser and scheduler state as tensors + JSON ---------------------------------------
def _split_state(prefix: str, state: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors inside a nested state dict by references stored in ``tensors``."""
    if isinstance(state, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = state
        return {"__tensor__": key}
    if isinstance(state, dict):
        return {str(k): _split_state(f"{prefix}.{k}", v, tensors) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return [_split_state(f"{prefix}.{i}", v, tensors) for i, v in enumerate(state)]
    if isinstance(state, float) and not math.isfinite(state):
        return {"__float__": repr(state)}
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    raise TypeError(f"cannot store {type(state).__name__} in a checkpoint")


def _join_state(state: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(state, dict):
        if set(state) == {"__tensor__"}:
            return tensors[state["__tensor__"]]
        if set(state) == {"__float__"}:
            return float(state["__float__"])
        return {k: _join_state(v, tensors) for k, v in state.items()}
    if isinstance(state, list):
        return [_join_state(v, tensors) for v in state]
    return state


def _optimizer_from_json(state: dict) -> dict:
    """JSON turned int keys into strings and tuples into lists; undo what torch cares about."""
    out = dict(state)
    out["state"] = {int(k): v for k, v in state.get("state", {}).items()}
    groups = []
    for group in state.get("param_groups", []):
        group = dict(group)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    out["param_groups"] = groups
    return out


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, train_state: dict, rng: dict[str, torch.Tensor],
                    config: dict | None = None, auxiliary=None) -> None:
    """Write the checkpoint atomically; ``config`` (the run's config as a dict) lets a resume see edits;
    ``auxiliary`` is the optimiser of the model's auxiliary parameters, when its loss trains some."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    optim_json = _split_state("optim", optimizer.state_dict(), tensors)
    sched_json = _split_state("sched", scheduler.state_dict(), tensors)
    for name, value in rng.items():
        tensors[f"rng.{name}"] = value
    record = {"format": CHECKPOINT_FORMAT, "state": _split_state("state", train_state, tensors), "optimizer": optim_json, "scheduler": sched_json,
              "rng": sorted(rng), **({"config": config} if config is not None else {})}
    if auxiliary is not None:     # only then: the records of every other run stay as they were
        record["auxiliary"] = _split_state("aux", auxiliary.state_dict(), tensors)
    meta = {"vaelab_checkpoint": json.dumps(record, sort_keys=True)}
    sha = save_tensors(run_dir / "checkpoint.safetensors", tensors, meta)
    atomic_write_json(run_dir / "checkpoint.json", {**record, "sha256": sha, "tensors": "checkpoint.safetensors"})


def load_checkpoint(run_dir: Path) -> dict:
    """-> {"model": state_dict, "optimizer": ..., "scheduler": ..., "state": ..., "rng": {...}, "config": dict | None,
    "auxiliary": ... | None}.

    ``config`` is the run's config when the checkpoint was written (None for checkpoints of
    vaelab before it was recorded); ``auxiliary`` the auxiliary optimiser's state (None when
    the run has none, as every run before the auxiliary optimiser)."""
    path = run_dir / "checkpoint.safetensors"
    json_path = run_dir / "checkpoint.json"
    if not path.is_file():
        raise VaelabError("holds no checkpoint to resume from (checkpoint.safetensors is missing)", run_dir)
    raw = read_bytes(path, "checkpoint", 16 << 30)
    tensors, meta = load_weights(path, data=raw)
    try:
        record = json.loads(meta["vaelab_checkpoint"])
        if not isinstance(record, dict):
            raise TypeError("the checkpoint record is not a table")
        if record.get("format") != CHECKPOINT_FORMAT:
            raise VaelabError(f"has checkpoint format {record.get('format')!r}; this vaelab reads "
                              f"{CHECKPOINT_FORMAT}", path)
        state = _checked_state(_join_state(record["state"], {}))
    except VaelabError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError):
        raise VaelabError("lacks valid vaelab checkpoint metadata", path) from None
    sha = _sha256(raw)
    _check_mirror(json_path, record, sha)
    try:
        return {
            "model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
            "optimizer": _optimizer_from_json(_join_state(record["optimizer"], tensors)),
            "scheduler": _join_state(record["scheduler"], tensors),
            "state": state,
            "rng": {name: tensors[f"rng.{name}"] for name in record["rng"]},
            "config": record["config"] if isinstance(record.get("config"), dict) else None,
            "auxiliary": _optimizer_from_json(_join_state(record["auxiliary"], tensors))
            if isinstance(record.get("auxiliary"), dict) else None,
        }
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError):
        raise VaelabError("is inconsistent: its metadata names tensors it does not hold", path) from None


def _checked_state(state: Any) -> dict:
    """The training counters, as the engine uses them: counts are ints ≥ 0, times floats."""
    if not isinstance(state, dict) or "epoch" not in state or "step" not in state:
        raise TypeError("state is not a table with epoch and step")
    for key in ("epoch", "step", "best_epoch", "bad_epochs", "skipped_steps"):
        value = state.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"state.{key} is not a count")
    for key in ("best_val", "elapsed"):
        value = state.get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            raise ValueError(f"state.{key} is not a number")
    return state


def _check_mirror(json_path: Path, record: dict, sha: str) -> None:
    from ..fileio import read_json

    if not json_path.exists():
        atomic_write_json(json_path, {**record, "sha256": sha, "tensors": "checkpoint.safetensors"})
        return
    mirror = read_json(json_path, "checkpoint metadata")
    if not isinstance(mirror, dict):
        raise VaelabError("is not a JSON object; delete it to rebuild it from checkpoint.safetensors", json_path)
    if mirror.get("sha256") == sha:
        body = {k: v for k, v in mirror.items() if k not in ("sha256", "tensors")}
        if body != record:
            raise VaelabError("was edited: it no longer matches checkpoint.safetensors; delete it to rebuild it "
                              "from the checkpoint", json_path)
        return
    try:
        # Strictly older: a mirror of the same epoch and step with another checksum means the
        # tensor file was edited (or bits flipped), not that a kill came between the writes.
        older = ((int(mirror["state"]["epoch"]), int(mirror["state"]["step"]))
                 < (int(record["state"]["epoch"]), int(record["state"]["step"])))
    except (KeyError, TypeError, ValueError, OverflowError):
        older = False
    if older:
        # Killed between writing the tensors and their mirror: the tensor file is the truth.
        atomic_write_json(json_path, {**record, "sha256": sha, "tensors": "checkpoint.safetensors"})
        return
    if {k: v for k, v in mirror.items() if k not in ("sha256", "tensors")} == record:
        # Same metadata, other bytes: the tensors themselves were edited or damaged.
        raise VaelabError("does not match the SHA-256 that checkpoint.json records for it: its tensors were edited "
                          "or damaged; restore it from a backup or retrain",
                          json_path.with_name("checkpoint.safetensors"))
    raise VaelabError("does not match checkpoint.safetensors (its checksum differs); the files were edited or "
                      "mixed up — delete checkpoint.json to rebuild it from the checkpoint", json_path)


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict, source: Path, mismatch: str,
                         what: str) -> None:
    """Load a checkpoint's optimiser state, first checking that it is the state of the same kind of
    optimiser (the same settings in each parameter group): ``mismatch`` is the one-line refusal
    otherwise, and ``what`` names the state when torch rejects it."""
    fresh = [sorted(group) for group in optimizer.state_dict()["param_groups"]]
    if fresh != [sorted(group) for group in saved.get("param_groups", [])]:
        raise VaelabError(mismatch, source)
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise VaelabError(f"{what} ({exc})", source) from None
