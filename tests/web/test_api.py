"""The explorer's JSON API, checked against the model computed directly in the test."""

from __future__ import annotations

import base64
import json
import tomllib

import numpy as np
import pytest
import torch

from vaelab.imageio import to_uint8

VAE, AE = 0, 1


def uint8_of(model_output: torch.Tensor) -> np.ndarray:
    return to_uint8(model_output)


def test_runs_are_listed_by_id_and_name(client, explorer_runs):
    runs = client.get("/api/runs").json()["runs"]
    assert [r["id"] for r in runs] == [0, 1]
    assert [r["model"] for r in runs] == ["conv-vae", "mlp-ae"]
    assert runs[0]["is_variational"] and not runs[1]["is_variational"]
    by_id = client.get("/api/runs/0").json()
    by_name = client.get(f"/api/runs/{runs[0]['name']}").json()
    assert by_id == by_name and by_id["latent_dim"] == 4 and by_id["image_shape"] == [1, 8, 8]


def test_run_details_match_the_run_files(client, tiny_vae_run):
    details = client.get("/api/runs/0").json()
    records = [json.loads(line) for line in (tiny_vae_run / "metrics.jsonl").read_text().splitlines()]
    final = next(r for r in reversed(records) if r["event"] == "final")
    assert details["metrics"]["test_neg_elbo"] == pytest.approx(final["test_neg_elbo"])
    assert details["test_neg_elbo"] == pytest.approx(final["test_neg_elbo"])
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [p["epoch"] for p in details["curve"]] == [r["epoch"] for r in epochs]
    toml = tomllib.loads((tiny_vae_run / "config.toml").read_text())
    rows = {(row["section"], row["key"]): row["value"] for row in details["config"]}
    for section in ("model", "data", "train"):
        for key, value in toml[section].items():
            assert rows[(section, key)] == value, (section, key)
    assert set(details["startup_seconds"]) == {"model", "data", "map", "sliders", "anomaly"}


def test_latent_dims_are_ordered_by_kl_computed_from_the_formula(client, explorer_runs):
    info = client.get("/api/runs/0/latent").json()
    explorer = explorer_runs[VAE]
    x = torch.from_numpy(explorer.images).float() / 255
    with torch.no_grad():
        posterior = explorer.model.encode(x)
    mu, logvar = posterior.mean.double(), posterior.logvar.double()
    # KL(N(μ, σ²) ‖ N(0, 1)) per dimension, averaged over images (Def. 3.1.1)
    kl = (0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)).mean(dim=0).numpy()
    assert np.allclose(info["score"], kl, rtol=1e-4, atol=1e-6)
    assert info["dims"] == [int(d) for d in np.argsort(-kl, kind="stable")]
    assert info["low"] == [-3.0] * 4 and info["high"] == [3.0] * 4 and info["origin"] == [0.0] * 4


def test_ae_sliders_span_the_training_codes_gaussian(client, explorer_runs):
    info = client.get("/api/runs/1/latent").json()
    model = explorer_runs[AE].model
    mean = model.code_mean.double().numpy()
    std = model.code_cov.double().diagonal().sqrt().numpy()
    assert np.allclose(info["low"], mean - 3 * std) and np.allclose(info["high"], mean + 3 * std)
    assert info["score_name"] == "code variance"


@pytest.mark.parametrize("run", [VAE, AE])
def test_decode_returns_exactly_the_decoders_mean_image(client, explorer_runs, pixels, run):
    model = explorer_runs[run].model
    z = [0.7, -1.2, 0.1, 2.0]
    result = client.post(f"/api/runs/{run}/decode", json={"z": z}).json()
    with torch.no_grad():
        expected = uint8_of(model.decode_mean(torch.tensor([z])))[0]
    assert np.array_equal(pixels(result["image"]), expected)
    assert result["ms"] > 0


def test_decode_refuses_a_code_of_the_wrong_size_or_non_finite(client):
    wrong = client.post("/api/runs/0/decode", json={"z": [0.0, 1.0]})
    assert wrong.status_code == 400 and "4 dimensions" in wrong.json()["error"]
    for bad in ([1e9, 0, 0, 0], ["NaN", 0, 0, 0]):
        response = client.post("/api/runs/0/decode", json={"z": bad})
        assert response.status_code == 422 and response.json()["error"].startswith("invalid request")


def test_samples_are_reproducible_with_a_seed_and_new_without(client, pixels):
    one = client.post("/api/runs/0/samples", json={"n": 9, "seed": 5}).json()
    two = client.post("/api/runs/0/samples", json={"n": 9, "seed": 5}).json()
    fresh = client.post("/api/runs/0/samples", json={"n": 9}).json()
    assert len(one["images"]) == 9 and one["images"] == two["images"] and one["seed"] == 5
    assert fresh["images"] != one["images"] and isinstance(fresh["seed"], int)
    assert pixels(one["images"][0]).shape == (1, 8, 8)


def test_cold_samples_approach_the_decoded_prior_mean(client, explorer_runs, pixels):
    # z ~ N(0, T²·I) with T → 0 concentrates at z = 0, whose image the decoder gives directly
    with torch.no_grad():
        centre = explorer_runs[VAE].model.decode_mean(torch.zeros(1, 4))[0].numpy()
    result = client.post("/api/runs/0/samples", json={"n": 8, "temperature": 0.01, "seed": 1}).json()
    for url in result["images"]:
        assert np.abs(pixels(url)[0] / 255.0 - centre[0]).max() < 0.05


def test_latent_map_is_the_pca_of_the_latent_means(client, explorer_runs):
    from sklearn.decomposition import PCA

    n = 60
    data = client.get(f"/api/runs/0/map?n={n}").json()
    assert data["n"] == n == len(data["x"]) == len(data["y"]) == len(data["labels"]) and data["projection"] == "pca"
    explorer = explorer_runs[VAE]
    with torch.no_grad():
        codes = explorer.model.encode_mean(torch.from_numpy(explorer.images).float() / 255).numpy()
    pca = PCA(n_components=2).fit(codes)
    expected = pca.transform(codes[:n])
    got = np.stack([data["x"], data["y"]], axis=1)
    for axis in range(2):  # principal axes are defined up to sign
        sign = np.sign(expected[:, axis] @ got[:, axis])
        assert np.allclose(got[:, axis], sign * expected[:, axis], atol=1e-4)
    assert np.allclose(data["explained"], pca.explained_variance_ratio_, atol=1e-5)


def test_latent_map_caps_at_the_served_images_and_refuses_silly_n(client, explorer_runs):
    available = len(explorer_runs[VAE].images)
    data = client.get("/api/runs/0/map?n=2000").json()
    assert data["n"] == data["available"] == available == len(data["x"])
    for n in (0, 2001, "many"):
        response = client.get(f"/api/runs/0/map?n={n}")
        assert response.status_code == 422 and "error" in response.json()


def test_served_images_are_real_test_images_with_their_labels(client, explorer_runs, pixels):
    from vaelab.data import load_data

    explorer = explorer_runs[VAE]
    test = load_data(explorer.config.data).test
    data = client.get("/api/runs/0/map?n=20").json()
    for index in range(20):
        png = client.get(f"/api/runs/0/thumbnails/{index}")
        assert png.headers["content-type"] == "image/png"
        image = pixels("data:image/png;base64," + base64.b64encode(png.content).decode())
        matches = np.flatnonzero((test.images.numpy() == image).all(axis=(1, 2, 3)))
        assert len(matches) >= 1
        assert data["labels"][index] in test.labels.numpy()[matches]


def test_test_image_detail_is_its_reconstruction_and_code(client, explorer_runs, pixels):
    detail = client.get("/api/runs/0/images/7").json()
    explorer = explorer_runs[VAE]
    x = torch.from_numpy(explorer.images[7:8]).float() / 255
    with torch.no_grad():
        recon = uint8_of(explorer.model.reconstruct(x))[0]
        code = explorer.model.encode_mean(x)[0].numpy()
    assert np.array_equal(pixels(detail["image"]), explorer.images[7])
    assert np.array_equal(pixels(detail["reconstruction"]), recon)
    mse = np.mean((explorer.images[7] / 255.0 - recon / 255.0) ** 2)
    assert detail["mse"] == pytest.approx(mse)
    assert np.allclose(detail["code"], code, atol=1e-6)
    assert detail["label_name"] == str(detail["label"])


def test_image_index_out_of_range_is_404(client, explorer_runs):
    n = len(explorer_runs[VAE].images)
    for path in (f"/api/runs/0/images/{n}", f"/api/runs/0/thumbnails/{n}"):
        response = client.get(path)
        assert response.status_code == 404 and "out of range" in response.json()["error"]
    assert client.get("/api/runs/0/images/-1").status_code == 422


@pytest.mark.parametrize("slerp", [False, True])
def test_interpolation_runs_from_one_reconstruction_to_the_other(client, explorer_runs, pixels, slerp):
    explorer = explorer_runs[VAE]
    result = client.post("/api/runs/0/interpolate", json={"a": 2, "b": 9, "steps": 7, "slerp": slerp}).json()
    frames = [pixels(url) for url in result["images"]]
    assert len(frames) == 7
    with torch.no_grad():
        ends = uint8_of(explorer.model.reconstruct(torch.from_numpy(explorer.images[[2, 9]]).float() / 255))
    assert np.array_equal(frames[0], ends[0]) and np.array_equal(frames[-1], ends[1])


def test_interpolation_refuses_bad_requests(client):
    assert client.post("/api/runs/0/interpolate", json={"a": 0, "b": 1, "steps": 1}).status_code == 422
    assert client.post("/api/runs/0/interpolate", json={"a": 0, "b": 99999}).status_code == 404


def test_upload_reconstructs_the_converted_image(client, explorer_runs, pixels, to_png):
    from vaelab.imageio import convert

    explorer = explorer_runs[VAE]
    digit = explorer.images[3][0]
    big_rgb = np.repeat(np.kron(digit, np.ones((4, 4), dtype=np.uint8))[:, :, None], 3, axis=2)  # 32×32 RGB
    result = client.post("/api/runs/0/upload", files={"file": ("digit.png", to_png(big_rgb), "image/png")}).json()
    expected_input = convert(big_rgb.transpose(2, 0, 1), 1, (8, 8))
    assert np.array_equal(pixels(result["image"]), expected_input)
    with torch.no_grad():
        recon = uint8_of(explorer.model.reconstruct(torch.from_numpy(expected_input[None]).float() / 255))[0]
    assert np.array_equal(pixels(result["reconstruction"]), recon)
    assert result["original_size"] == [3, 32, 32]
    assert any("grey" in n for n in result["notices"]) and any("32×32" in n for n in result["notices"])
    assert result["name"] == "digit.png"


def test_upload_sizes_and_anomaly_verdict_are_consistent(client, explorer_runs, to_png):
    explorer = explorer_runs[VAE]
    sizes = client.post("/api/runs/0/upload", files={"file": ("d.png", to_png(explorer.images[0][0]), "image/png")}
                        ).json()["sizes"]
    assert sizes["raw"] == 64
    assert sizes["png"] > 0 and sizes["webp_lossless"] > 0
    if sizes["codec"] is not None:
        from vaelab.apps.codec import compress

        assert sizes["codec"] == len(compress(explorer.model, explorer.images[:1]))
        assert 0 < sizes["codec_header"] < sizes["codec"]
        if sizes["webp"] is not None:  # the lossy WebP bought at least the codec's fidelity
            assert sizes["webp_psnr"] >= sizes["codec_psnr"]
    else:
        assert sizes["codec_error"]
    white = np.full((8, 8), 255, dtype=np.uint8)
    anomaly = client.post("/api/runs/0/upload", files={"file": ("w.png", to_png(white), "image/png")}).json()["anomaly"]
    assert [a["score_name"] for a in anomaly] == ["nll", "complexity", "reconstruction"]
    for a in anomaly:
        assert a["is_anomaly"] == (a["score"] > a["threshold"]) and a["fit_images"] > 0


def test_anomaly_scores_and_thresholds_follow_their_definitions(client, explorer_runs, to_png):
    import numpy as np

    from vaelab.apps.common import run_images

    explorer = explorer_runs[VAE]
    image = explorer.images[5]
    result = client.post("/api/runs/0/upload", files={"file": ("d.png", to_png(image[0]), "image/png")}).json()
    by_name = {a["score_name"]: a for a in result["anomaly"]}
    # reconstruction: the mean squared error per pixel on [0, 1], as the upload's own mse
    assert by_name["reconstruction"]["score"] == pytest.approx(result["mse"])
    # its threshold: the 0.95 quantile of the same error over the run's validation images
    val = run_images(explorer.run, "val", 2000)
    with torch.no_grad():
        recon = uint8_of(explorer.model.reconstruct(torch.from_numpy(val).float() / 255))
    errors = ((val / 255.0 - recon / 255.0) ** 2).reshape(len(val), -1).mean(axis=1)
    assert by_name["reconstruction"]["threshold"] == pytest.approx(np.quantile(errors, 0.95))


def test_ae_upload_uses_the_reconstruction_score(client, explorer_runs, to_png):
    result = client.post("/api/runs/1/upload", files={"file": ("d.png", to_png(explorer_runs[AE].images[0][0]),
                                                                "image/png")}).json()
    assert [a["score_name"] for a in result["anomaly"]] == ["reconstruction"]
    assert result["anomaly"][0]["score"] == pytest.approx(result["mse"])


def test_openapi_schema_describes_every_endpoint(client):
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    expected = {"/api/runs": "get", "/api/runs/{run}": "get", "/api/runs/{run}/samples": "post",
                "/api/runs/{run}/latent": "get", "/api/runs/{run}/decode": "post", "/api/runs/{run}/map": "get",
                "/api/runs/{run}/images/{index}": "get", "/api/runs/{run}/thumbnails/{index}": "get",
                "/api/runs/{run}/interpolate": "post", "/api/runs/{run}/upload": "post"}
    for path, method in expected.items():
        assert method in paths[path], path
    assert set(paths) == set(expected)
    assert "DecodeRequest" in schema["components"]["schemas"]


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "latent explorer" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    # nothing on the page may come from the network
    assert "http://" not in page.text.replace("http://www.w3.org", "") and "https://" not in page.text
    js = client.get("/static/app.js").text
    assert "https://" not in js and "http://" not in js.replace("http://www.w3.org/2000/svg", "")
