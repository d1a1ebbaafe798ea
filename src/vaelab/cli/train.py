"""``vaelab train``: turn a data set into a trained AE or VAE run directory."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import build_config, config_options, overrides


def unique_run_dir(base: Path) -> Path:
    if not base.exists():
        return base
    i = 2
    while Path(f"{base}-{i}").exists():
        i += 1
    return Path(f"{base}-{i}")


@click.command("train", context_settings={"max_content_width": 110})
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="TOML file with [model], [data] and [train] tables; flags override it.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="run directory to write (default: runs/MODEL-DATA, numbered if taken).")
@click.option("--resume", is_flag=True, help="continue the run in --out from its last checkpoint; its config.toml and "
              "flags may change the learning rate, epochs, batch size and stopping rules (recorded), nothing else.")
@click.option("--restart", is_flag=True, help="train the run in --out again from the beginning with its config.toml "
              "(and flags); its model, checkpoint and log are replaced.")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar.")
@config_options
def command(config_file, out, resume, restart, quiet, **kwargs):
    """Train an autoencoder or VAE and write a run directory.

    \b
    Examples:
      vaelab train --data mnist-5k --model conv-vae --epochs 20
      vaelab train --data fashion-mnist --binarize dynamic --epochs 10 --out runs/fmnist
      vaelab train --out runs/fmnist --resume            # after an interruption
      vaelab train --out runs/fmnist --resume --epochs 20 --lr 3e-4   # continue for longer, slower
      torchrun --nproc-per-node 2 -m vaelab train ...     # DDP over 2 processes
    """
    from ..errors import VaelabError
    from ..runs import CHECKPOINT_FILE, CONFIG_FILE, read_config
    from ..training import train

    flags = overrides(kwargs)
    if resume or restart:
        if out is None:
            raise VaelabError(f"{'--resume' if resume else '--restart'} needs --out RUN_DIR, the run to continue")
        if resume and config_file is not None:
            raise VaelabError("--resume continues a run with its saved config; drop --config (edit the run's "
                              "config.toml or pass flags to change what a resume may change)")
    if (resume or restart) and config_file is None:
        if not (out / CONFIG_FILE).exists():
            raise VaelabError(f"has no {CONFIG_FILE} to {'resume' if resume else 'restart'} from", out)
        saved = read_config(out / CONFIG_FILE)
        sections = {s: vars(getattr(saved, s)) for s in ("model", "data", "train")}
        for section, values in flags.items():
            sections[section] = {**sections[section], **values}
        config = build_config(None, sections)   # the training engine checks what a resume may change
    else:
        config = build_config(config_file, flags)
        if out is None:
            out = unique_run_dir(Path("runs") / f"{config.model.name}-{config.data.name.replace(':', '-').replace('/', '-')}")
    if resume and not (out / CHECKPOINT_FILE).exists() and not (out / "model.safetensors").exists():
        click.echo("vaelab: the run stopped before its first checkpoint; starting it from the beginning", err=True)
    result = train(config, out, resume=resume, restart=restart, progress=not quiet)
    final = result.final
    if final:
        parts = [f"{result.epochs} epoch{'s' * (result.epochs != 1)}, {result.steps} steps in {result.seconds:.0f} s"]
        if "test_neg_elbo" in final:
            parts.append(f"test −ELBO {final['test_neg_elbo']:.2f} nats/image "
                         f"(reconstruction {final['test_reconstruction']:.2f}, KL {final['test_kl']:.2f})")
        elif "test_rate" in final:   # a rate–distortion model: what its codes cost and how faithful they are
            parts.append(f"test rate {final['test_rate']:.1f} bits/image ({final['test_rate'] / 8:.1f} bytes) at "
                         f"{final['test_psnr_db']:.2f} dB PSNR, over quality levels drawn per image "
                         "(`vaelab compress` codes at one)")
        if "test_accuracy" in final:   # a model with a classifier q(y|x): how often it names the class
            parts.append(f"classifier accuracy {100 * final['test_accuracy']:.1f} % on the test images")
        click.echo("; ".join(parts))
        if config.train.report:
            from ..report import write_report

            path = write_report(out)
            click.echo(f"report: {path}")
        click.echo(f"run directory: {out}")
