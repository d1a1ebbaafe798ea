"""What may change when a run is resumed, and what may not.

The checkpoint records the config the run was trained with. On ``--resume`` the config about
to be used (``config.toml``, possibly edited, plus any flags) is compared with it field by
field: a change that cannot apply to a run in progress — another model or data set, another
optimiser or schedule, another seed — is refused naming the field; a change that can apply
(the learning rate, the number of epochs, the batch size, the stopping rules, where and how
fast it runs) is applied, written to ``config.toml`` and recorded in ``metrics.jsonl`` as a
``resume`` event. Nothing is silently ignored.
"""

from __future__ import annotations

from typing import Any

from ..errors import VaelabError

# [train] fields a resumed run can take over (the engine applies each from the next step on).
APPLICABLE = {"lr", "epochs", "batch_size", "kl_warmup_epochs", "grad_clip", "early_stopping", "time_limit",
              "nan_policy", "log_every", "eval_batch_size", "tensorboard", "report", "device", "threads",
              "precision", "deterministic", "min_epochs"}
# Fields that do not change what is trained (bookkeeping of the config itself).
IGNORED = {"format"}


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the fields added to vaelab since it was written set to their
    defaults — the behaviour the run was trained with (a new field's default keeps the old
    behaviour), so a resume does not see them as changes. As saved when it no longer reads."""
    from ..config import from_dict, to_dict
    from ..runs import RunConfig

    try:
        return to_dict(from_dict(RunConfig, saved))
    except VaelabError:   # a field vaelab no longer has: compared as saved, which names it
        return saved


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, saved value, current value) for every field that differs, in a stable order."""
    a, b = _flatten(with_defaults(saved)), _flatten(current)
    return [(name, a.get(name), b.get(name)) for name in sorted(set(a) | set(b))
            if name.split(".")[0] not in IGNORED and a.get(name) != b.get(name)]


def check_resumable(changes: list[tuple[str, Any, Any]]) -> list[tuple[str, Any, Any]]:
    """The changes a resume applies; a change it cannot apply is a VaelabError naming the field."""
    for name, old, new in changes:
        section, _, field = name.partition(".")
        if section != "train" or field not in APPLICABLE:
            raise VaelabError(
                f"{name} changed from {old!r} to {new!r} since the checkpoint was written; a resumed run keeps its "
                f"{'model' if section == 'model' else 'data' if section == 'data' else 'optimiser, schedule and seed'}"
                f" — undo the change, or train a new run (--init-from RUN starts it from this run's weights)")
    return changes
