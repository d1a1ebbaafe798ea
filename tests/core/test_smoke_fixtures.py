import vaelab


def test_fixture_runs_load(tiny_vae_run, tiny_ae_run):
    for run in (tiny_vae_run, tiny_ae_run):
        model = vaelab.load(run)
        assert model.image_shape == (1, 8, 8)
        assert not model.training
