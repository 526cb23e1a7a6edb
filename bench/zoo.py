"""The model zoo on this machine: which variant each model should run, what a worker
costs with every model loaded, what `model=all` and `explain=true` cost.

Measures, in one run:
- every shipped model's variants, one image, one thread (LiteRT p50), and the model as
  the server runs it (the variant picked at start-up, or another model's network and
  its own head): served against the fastest variant (target: within 10 %);
- the same head on MobileNetV2 at 224 px, built here from the base weights, as the
  yardstick for the hot dog model (target: its fastest variant within 2x);
- process start to first answer of gunicorn with every model loaded (target 1.5 s), with
  the variants timed at start-up (a first start on this CPU) and remembered (later ones);
- RSS per worker after 100 requests mixing every model and model=all (target 160 MB);
- model=all on a 512-px photo against the sum of each model's own inference plus one
  decode (target: at most 1.3x);
- explain=true against the same request without it, server time (target: +25 % at most).
"""

from __future__ import annotations

import os
import statistics

import numpy as np

from bench.common import ROOT, percentiles, report, timed
from bench.http_load import first_answer, multipart
from classifier.settings import machine_description
from tests import images
from tests.servers import gunicorn

MODELS = ROOT / "models"
REPEATS = 60


def variant_timings() -> dict:
    """Every variant of every model alone, and each model as the server runs it (the
    variant picked at start-up, or for a model on a shared network that network and
    its own head), timed in turns so that a drift in the machine's speed hits all."""
    from classifier.model import Model
    from classifier.registry import ModelRegistry
    from classifier.variants import median_ms_in_turns

    registry = ModelRegistry.from_folder(MODELS, "hotdog")
    rows = {}
    for name in registry.names():
        served = registry.get(name)
        files = served.card["files"]["variants"]
        # Each variant as the model runs it alone (with its extra feature networks).
        candidates = {variant: Model.from_directory(served.path.parent, variant=variant)
                      for variant in files}
        candidates["served"] = served
        pixels = served.blank_input() + np.uint8(90)
        p50 = median_ms_in_turns({key: (lambda m=model, p=pixels: m.predict_pixels(p))
                                  for key, model in candidates.items()}, REPEATS)
        fastest = min(files, key=p50.get)
        rows[name] = {
            "p50_ms": {variant: round(p50[variant], 3) for variant in files}, "fastest": fastest,
            "picked_at_startup": served.runtime.variant,
            "runs_on": served.runtime.features_of or name, "served_p50_ms": round(p50["served"], 3),
            "served_over_fastest": round(p50["served"] / p50[fastest], 3)}
    return rows


def mobilenet_yardstick() -> dict:
    """The hot dog model's head on MobileNetV2 (224 px), float16 and int8."""
    import keras

    from classifier.model import Model
    from training.bases import BASES
    from training.export import to_tflite

    spec = BASES["mobilenet_v2"]
    base = spec.build(224, str(spec.default_weights()))
    pixels = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(pixels))
    network = keras.Model(pixels, keras.layers.Dense(2, activation="softmax")(pooled))
    calibration = np.stack([images.photo_array(224, 224, seed=s) for s in range(16)])
    out = ROOT / "bench" / "results" / "tmp"
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for variant in ("float16", "int8"):
        path = out / f"mobilenet_v2_{variant}.tflite"
        path.write_bytes(to_tflite(network, variant, calibration))
        model = Model(path, ["a", "b"])
        sample = calibration[0]
        timings[variant] = percentiles(
            timed(lambda i, m=model, p=sample: m.predict_pixels(p), REPEATS))["p50_ms"]
    return timings


#: Cold starts measured in each mode, taken in turns: one start varies by +-0.2 s here.
COLD_STARTS = 5
#: The variant choices timed at start-up (as on the first start on a CPU), or remembered
#: from an earlier start in the instance folder (every later start).
START_MODES = {"timing variants": {"NOTHOTDOG_REMEMBER_VARIANTS": "0"}, "choices remembered": {}}


def serving() -> dict:
    """Cold start and memory of gunicorn's workers, as deployed (gunicorn.conf.py: a
    worker per core, each pinned to its core), with every model loaded."""
    import psutil
    import requests

    names = sorted(p.name for p in MODELS.iterdir() if (p / "model_card.json").is_file())
    workers = len(os.sched_getaffinity(0))
    photo = multipart("photo.jpg", images.jpeg(512, 384, seed=1))
    cold_starts: dict[str, list[float]] = {mode: [] for mode in START_MODES}
    for _ in range(COLD_STARTS):
        for mode, env in START_MODES.items():
            with gunicorn(workers=workers, env=env) as server:
                cold_starts[mode].append(round(first_answer(server, photo), 3))
    with gunicorn(workers=workers) as server:
        first_answer(server, photo)
        session = requests.Session()
        photos = [images.jpeg(w, h, seed=i) for i, (w, h) in
                  enumerate([(512, 384), (640, 480), (320, 240), (1024, 768)])]
        for i in range(100):
            model = [*names, "all"][i % (len(names) + 1)]
            data = photos[i % len(photos)]
            if model == "digits":
                data = images.png(280, 280)
            session.post(f"{server.base}/api/v1/classify?model={model}", data=data,
                         headers={"Content-Type": "image/jpeg"}, timeout=30)
        rss = max(worker.memory_info().rss for worker in server.workers())
        listed = session.get(server.base + "/api/v1/models").json()["models"]
        runtime = {m["name"]: m["runtime"] for m in listed}
    return {"cold_start_s": {mode: {"runs": runs, "median": statistics.median(runs)}
                             for mode, runs in cold_starts.items()},
            "rss_mb_after_100_requests": round(rss / 2**20, 1),
            "models": names, "runtime": runtime, "psutil": psutil.__version__}


def all_models_cost() -> dict:
    """model=all on one 512-px photo against the parts it is made of, in-process; and
    what one model=all request with explanations costs in decodes and network runs."""
    from unittest import mock

    from classifier import service
    from classifier.intake import decode_image, draft_size
    from classifier.litert import Network
    from classifier.registry import ModelRegistry

    models = ModelRegistry.from_folder(ROOT / "models", "hotdog").photo_models()
    photo = images.jpeg(512, 384, seed=3)
    largest = max((m.input_size for m in models), key=lambda s: s[0] * s[1])
    together = statistics.median(timed(lambda i: service.classify(models, photo), REPEATS))
    decode = statistics.median(timed(lambda i: decode_image(photo, draft_size=draft_size(largest)),
                                     REPEATS))
    image = decode_image(photo, draft_size=draft_size(largest))
    inference = {m.name: statistics.median(timed(lambda i, m=m: m.predict_pixels(m.prepare(image)),
                                                 REPEATS)) for m in models}
    parts = decode + sum(inference.values())
    with (mock.patch.object(service, "decode_image", wraps=service.decode_image) as decodes,
          mock.patch.object(Network, "run", autospec=True, side_effect=Network.run) as runs):
        service.classify(models, photo, explain=[m.name for m in models])
    networks = {id(network) for model in models for network in model.networks}
    return {"all_ms": round(together, 3), "decode_ms": round(decode, 3),
            "inference_ms": {k: round(v, 3) for k, v in inference.items()},
            "parts_ms": round(parts, 3), "all_over_parts": round(together / parts, 3),
            "explained": {"models": len(models), "networks": len(networks),
                          "decodes": decodes.call_count, "network_runs": runs.call_count}}


def explain_cost() -> dict:
    """Server time (the API's elapsed_ms) of the same request with and without explain=true."""
    from webapp import create_app

    client = create_app({"TESTING": True}).test_client()
    photo = images.jpeg(512, 384, seed=4)

    def elapsed(query: str) -> float:
        return client.post("/api/v1/classify" + query, data=photo,
                           content_type="image/jpeg").get_json()["elapsed_ms"]

    plain, explained = [], []
    for _ in range(5):
        elapsed(""), elapsed("?explain=true")
    for _ in range(REPEATS):  # interleaved, so drifts in the machine's speed hit both alike
        plain.append(elapsed(""))
        explained.append(elapsed("?explain=true"))
    return {"plain_ms_p50": statistics.median(plain), "explain_ms_p50": statistics.median(explained),
            "explain_over_plain": round(statistics.median(explained) / statistics.median(plain), 3)}


def to_markdown(result: dict) -> str:
    lines = ["| model | int8 p50 | float16 p50 | fastest | picked at start-up | network | served p50 "
             "| served / fastest |",
             "|---|---:|---:|---|---|---|---:|---:|"]
    for name, row in result["variants"].items():
        times = " | ".join(f"{row['p50_ms'][v]:.2f} ms" if v in row["p50_ms"] else "not shipped"
                           for v in ("int8", "float16"))
        lines.append(f"| {name} | {times} | {row['fastest']} | {row['picked_at_startup']} | "
                     f"{row['runs_on']}'s | {row['served_p50_ms']:.2f} ms | "
                     f"{row['served_over_fastest']:.2f} |")
    mobilenet = result["mobilenet_v2_ms"]
    hotdog = min(result["variants"]["hotdog"]["p50_ms"].values())
    s, a, e = result["serving"], result["all_models"], result["explain"]
    lines += [
        "",
        f"- MobileNetV2 yardstick (same head, 224 px): int8 {mobilenet['int8']:.2f} ms, float16 "
        f"{mobilenet['float16']:.2f} ms; the hot dog model's fastest variant {hotdog:.2f} ms = "
        f"**{hotdog / min(mobilenet.values()):.2f}x** (target <= 2x)",
        *(f"- Cold start, gunicorn with {len(s['models'])} models, {mode}: median "
          f"**{runs['median']:.2f} s** of {len(runs['runs'])} starts "
          f"({', '.join(f'{x:.2f}' for x in runs['runs'])}) (target <= 1.5 s)"
          for mode, runs in s["cold_start_s"].items()),
        f"- RSS of the larger worker after 100 mixed requests: **{s['rss_mb_after_100_requests']:.1f} MB** "
        "(target <= 160 MB)",
        f"- model=all, 512-px photo: {a['all_ms']:.2f} ms against {a['parts_ms']:.2f} ms for one "
        f"decode ({a['decode_ms']:.2f}) and each model's inference: **{a['all_over_parts']:.2f}x** "
        "(target <= 1.3x)",
        f"- model=all with explain=true: {a['explained']['decodes']} decode and "
        f"{a['explained']['network_runs']} network runs for {a['explained']['models']} models on "
        f"{a['explained']['networks']} networks (target: one decode, one run per network)",
        f"- explain=true: {e['explain_ms_p50']:.2f} ms against {e['plain_ms_p50']:.2f} ms: "
        f"**{e['explain_over_plain']:.2f}x** (target <= 1.25x)"]
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = {"cpu": machine_description(), "variants": variant_timings(),
              "mobilenet_v2_ms": mobilenet_yardstick(), "serving": serving(),
              "all_models": all_models_cost(), "explain": explain_cost()}
    report("zoo", result, to_markdown)


if __name__ == "__main__":
    main()
