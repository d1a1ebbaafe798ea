"""``vaelab serve``: the latent explorer in the browser."""

from __future__ import annotations

from pathlib import Path

import click


def _check_hosts(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    from ..web.guard import is_host_name

    for value in values:
        if not is_host_name(value):  # the port is always the server's own
            raise click.BadParameter(f"{value!r} is not a host name or address (give a name like mybox.lan, "
                                     "without scheme or port)")
    return values


@click.command("serve")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on; anything but loopback makes the explorer reachable from other machines.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port; 0 picks a free one.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME", callback=_check_hosts,
              help="a host name the browser may use to reach the explorer, besides localhost, 127.0.0.1, [::1] "
                   "and --host (repeatable); requests naming any other host are refused (DNS rebinding).")
@click.option("--upload-slots", type=click.IntRange(1, 64), default=2, show_default=True,
              help="uploads processed at once; more get 503 with Retry-After (each may take ~70 MB of memory).")
@click.option("--max-points", type=click.IntRange(10, 2000), default=2000, show_default=True,
              help="test images served per run (latent map, thumbnails, galleries).")
@click.option("--threads", type=click.IntRange(0, 256), default=0, show_default=True,
              help="CPU threads for torch (0 = torch's default).")
@click.option("--open", "open_browser", is_flag=True, help="open the page in the default browser.")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar.")
def command(runs: tuple[Path, ...], host: str, port: int, allowed_hosts: tuple[str, ...], upload_slots: int,
            max_points: int, threads: int, open_browser: bool, quiet: bool):
    """Explore trained runs in the browser: samples, latent sliders, latent map,
    interpolation, your own image, and each run's metrics.

    Loads every RUN once (model and test data), then serves a page and a JSON API
    (schema at /api/openapi.json) until Ctrl+C. Several runs can be served at once and
    switched in the page.

    \b
    Example:
      vaelab demo                      # trains runs/demo in about a minute
      vaelab serve runs/demo           # then open http://127.0.0.1:8000/
      vaelab serve runs/a runs/b --port 0
      vaelab serve runs/demo --host 0.0.0.0 --allowed-host mybox.lan
    """
    import logging

    import torch

    from ..web import create_app, prepare_runs
    from ..web.server import bind_socket, exposure_warning, run, url_of

    logging.basicConfig(level=logging.INFO, format="vaelab serve: %(message)s")
    if threads:
        torch.set_num_threads(threads)
    # Bind first: a busy port fails in a second, not after the runs are loaded; listen only once
    # they are, so a browser opened early is refused at once instead of hanging on a silent server.
    sock = bind_socket(host, port, listen=False)
    try:
        warning = exposure_warning(host)
        if warning:
            click.echo(warning, err=True)
        if host.strip("[]") in ("0.0.0.0", "::") and not allowed_hosts:
            click.echo("note: other machines must name a host this server answers to; add --allowed-host NAME for "
                       "each name or address they use (others get 421)", err=True)
        url = url_of(sock)
        if not quiet:
            click.echo(f"loading {len(runs)} run{'s' * (len(runs) != 1)} for {url} (it answers once they are "
                       "ready) …", err=True)
        explorers = prepare_runs(list(runs), max_points=max_points, progress=not quiet)
        app = create_app(explorers, upload_slots=upload_slots, allowed_hosts=[host, *allowed_hosts])
        sock.listen(128)
        for i, explorer in enumerate(explorers):
            click.echo(f"  [{i}] {explorer.name}: {explorer.run_dir}")
        click.echo(f"vaelab explorer ready at {url}   (API schema: {url}api/openapi.json; Ctrl+C stops)")
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        try:
            run(app, sock)
        except KeyboardInterrupt:
            pass  # uvicorn re-raises Ctrl+C after its graceful shutdown; for a server it is the normal stop
    finally:
        sock.close()
    click.echo("vaelab explorer stopped")
