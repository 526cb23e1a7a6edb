"""The page's pure JavaScript modules (static/js: the shrinking arithmetic, the API
client and its plain-words errors, history, wording), tested without a browser by
Node's own test runner: tests/js/*.test.mjs. Node is missing: a failure in CI, a skip
elsewhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np

from classifier.explain import heat_layer
from classifier.settings import PROJECT_ROOT
from tests.conftest import ci_or_skip

JS_TESTS = PROJECT_ROOT / "tests" / "js"
NODE_MAJOR = 18  # node:test, and Blob, FormData and Response as globals (Debian 12 has 18.20)


def node() -> str:
    path = shutil.which("node") or shutil.which("nodejs")
    if not path:
        ci_or_skip("Node.js is not installed: tests/js/ (the page's JavaScript modules) needs node "
                   f"{NODE_MAJOR} or newer (apt-get install nodejs)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(re.match(r"v(\d+)", version)[1])
    if major < NODE_MAJOR:
        ci_or_skip(f"node {version.strip()} is too old for tests/js/: {NODE_MAJOR} or newer is needed")
    return path


def test_the_pages_javascript_modules():
    files = sorted(JS_TESTS.glob("*.test.mjs"))
    assert files, f"no tests in {JS_TESTS}"
    # The files by name: Node 18 and 20 search a folder given to --test, 21 and later do not.
    done = subprocess.run([node(), "--test", *map(str, files)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]


def test_the_page_draws_the_heat_layer_the_server_would_send():
    """explain=grid leaves the layer to the page (static/js/heat.js): for the same grids,
    its pixels are classifier.explain.heat_layer's, within a level of rounding."""
    grids = [np.random.default_rng(seed).random((7, 7)) for seed in range(3)]
    grids += [np.eye(7), np.zeros((5, 9))]
    script = ("import { heatPixels } from './static/js/heat.js';"
              "const grids = JSON.parse(process.argv[1]);"
              "console.log(JSON.stringify(grids.map((g) => Array.from(heatPixels(g)))));")
    done = subprocess.run([node(), "--input-type=module", "-e", script,
                           json.dumps([np.round(g, 3).tolist() for g in grids])],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=True)
    for grid, drawn in zip(grids, json.loads(done.stdout), strict=True):
        server = np.asarray(heat_layer(np.round(grid, 3)), np.int16)
        page = np.array(drawn, np.int16).reshape(server.shape)
        assert np.abs(page - server).max() <= 1
