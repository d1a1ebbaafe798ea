"""1,000 requests from 20 concurrent clients against the real ``vaelab serve`` on 127.0.0.1.

The load test itself lives in ``benchmarks/loadtest.py`` (which also reports the latency
percentiles); here it runs against the tiny VAE with a hard deadline, and every request must
get exactly the status it was meant to: 200s for the good ones, 4xx JSON errors for the bad
ones, no 5xx and no dropped connection. An upload that meets the server's limit on uploads at
once (a JSON 503 with Retry-After) is sent again after Retry-After, as a client should, so it
too must end 200; the memory test with 40 uploads at once is in ``test_server_memory.py``.
"""

from __future__ import annotations


import pytest



@pytest.mark.timeout(600)
def test_a_thousand_requests_from_twenty_clients_get_no_errors(tiny_vae_run, loadtest):
    summary = loadtest.run_load_test(tiny_vae_run, requests=1000, clients=20, threads=1, deadline_s=480)
    loadtest.print_table(summary)  # shown with -s; the benchmark script records the same figures
    assert summary["requests"] == 1000
    assert summary["errors"] == [], summary["errors"][:5]
    statuses = summary["status_counts"]
    assert not [s for s in statuses if s == "None" or s.startswith("5")]
    # the mix really contained refused requests, and each got its 4xx
    assert {"400", "404", "413", "422"} <= set(statuses)
    assert summary["server_exit_status"] == 0  # stopped by Ctrl+C, cleanly


def test_the_request_plan_expects_an_error_for_every_bad_request(loadtest):
    requests = loadtest.plan(2000, latent_dim=4, served_images=100, max_body=1000)
    for request in requests:
        assert (request.expect == 200) == (not request.kind.startswith(("bad", "too", "not")))
    assert {r.kind for r in requests} == {kind for kind, _ in loadtest.MIX}
