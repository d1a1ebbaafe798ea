"""The explorer's building blocks: projection, names, sizes, sockets."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest

from vaelab.errors import VaelabError
from vaelab.web.explorer import project_2d, run_names
from vaelab.web.server import bind_socket, exposure_warning, is_loopback, url_of
from vaelab.web.sizes import decode_webp, psnr, smallest_webp_reaching, webp_bytes


def test_pca_projection_matches_the_eigenvectors_of_the_covariance():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1]) + 2.0
    result = project_2d(codes)
    centred = codes - codes.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    top = eigenvectors[:, ::-1][:, :2]
    expected = centred @ top
    for axis in range(2):
        sign = np.sign(expected[:, axis] @ result.xy[:, axis])
        assert np.allclose(result.xy[:, axis], sign * expected[:, axis], atol=1e-4)
    assert np.allclose(result.explained, eigenvalues[::-1][:2] / eigenvalues.sum(), atol=1e-6)
    assert result.projection == "pca"


def test_low_dimensional_latents_are_drawn_as_they_are():
    codes = np.random.default_rng(1).normal(size=(50, 2))
    assert np.allclose(project_2d(codes).xy, codes, atol=1e-6) and project_2d(codes).projection == "latent"
    line = project_2d(codes[:, :1])
    assert np.allclose(line.xy[:, 0], codes[:, 0], atol=1e-6) and np.all(line.xy[:, 1] == 0)


def test_run_names_are_unique_and_never_look_like_ids(tmp_path):
    dirs = [tmp_path / "a" / "demo", tmp_path / "b" / "demo", tmp_path / "3"]
    assert run_names(dirs) == ["demo", "demo-2", "3-2"]


def test_psnr_from_its_definition():
    a = np.zeros((1, 4, 4), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # one of 16 pixels off by 255: MSE = 255²/16
    assert psnr(a, b) == pytest.approx(10 * math.log10(16))
    assert psnr(a, a) == 100.0   # vaelab.metrics' cap for an exact copy


def test_lossless_webp_round_trips_and_the_matched_lossy_one_reaches_its_target():
    image = np.random.default_rng(2).integers(0, 256, (1, 28, 28), dtype=np.uint8)
    assert np.array_equal(decode_webp(webp_bytes(image, None), 1), image)
    size, quality, reached = smallest_webp_reaching(image, 15.0)
    assert reached >= 15.0 and 0 <= quality <= 100 and size == len(webp_bytes(image, quality))
    assert smallest_webp_reaching(image, math.inf) == (None, None, None)


@pytest.mark.parametrize("host, local", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
                                         ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.4", False),
                                         ("example.org", False)])
def test_loopback_detection_and_the_exposure_warning(host, local):
    assert is_loopback(host) is local
    assert (exposure_warning(host) is None) is local
    if not local:
        assert "other machines" in exposure_warning(host)


def test_port_zero_picks_a_free_port_and_a_busy_port_is_a_clear_error():
    sock = bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0 and url_of(sock) == f"http://127.0.0.1:{port}/"
        with pytest.raises(VaelabError, match="--port 0"):
            bind_socket("127.0.0.1", port)
    finally:
        sock.close()
    with pytest.raises(VaelabError, match="cannot resolve"):
        bind_socket("no-such-host.invalid", 0)


def test_background_server_serves_and_stops(explorer_runs):
    import httpx

    from vaelab.web import BackgroundServer, create_app

    with BackgroundServer(create_app(explorer_runs)) as server:
        assert server.url.startswith("http://127.0.0.1:")
        runs = httpx.get(server.url + "api/runs", timeout=10).json()["runs"]
        assert len(runs) == 2
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1].strip("/"))), timeout=1)


def test_no_runs_is_an_error():
    from vaelab.web import create_app

    with pytest.raises(VaelabError, match="no runs"):
        create_app([])


def test_a_socket_bound_but_not_yet_listening_refuses_connections_at_once():
    """`vaelab serve` listens only once its runs are loaded: a browser opened early is refused at
    once instead of hanging on a connection nobody answers."""
    import socket

    from vaelab.web.server import bind_socket

    sock = bind_socket("127.0.0.1", 0, listen=False)
    port = sock.getsockname()[1]
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.listen(8)
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        sock.close()
