"""Calibrate a trained model's scores again and give it its "not sure" level, from its
own validation split (and, for a linear probe, its training photos answered out of fold).

    python -m training.calibrate DATA_DIR --out models/NAME [the training options]

Takes the very arguments `training.train` was run with (only the module name
changes; `--answer-accuracy` sets the target), rebuilds that run's validation split
with training's own code (and its training split, when the base stayed frozen), and
gives each shipped file the temperature and level that `training.train` would have
given it (`classifier.calibration`). The card's figures
that depend on them (each split's "not sure" share and the accuracy of the verdicts
given) are measured again on the photos the card names. Nothing is retrained.

Why: models trained before calibration existed have an older, uncalibrated level
(or none). The level must come from the validation split, never from the test photos
whose figures the card reports. As a check that the split really is the training
run's, the shipped file's answers on it must reproduce the card's validation
confusion matrix (and ROC AUC, for two classes) exactly; otherwise nothing is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from classifier import card as model_card
from classifier.model import Model
from training import card as training_card
from training import evaluate, train
from training.dataset import DataError

log = logging.getLogger("training.calibrate")


def main(argv: Sequence[str] | None = None) -> int:
    args = train.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    card = model_card.load(args.out)
    try:
        splits = train.gather(args)
        if splits.classes != card["classes"]:
            raise DataError(f"the data's classes {splits.classes} are not the card's {card['classes']}")
    except DataError as exc:
        log.error("%s", exc)
        return 2
    engines = {variant: uncalibrated(Model.from_directory(args.out, variant=variant))
               for variant in card["files"]["variants"]}
    size = engines[card["metrics_variant"]].input_size
    validation = train.read(splits.validation, size, train.VALIDATION)
    photos = {"validation": validation, "holdout": train.read_holdout(splits, args),
              "test": train.read_test_photos(args, splits.classes)}
    settings = card["training"]["settings"]
    frozen_base = card["training"]["epochs_run"].get("fine_tune") == 0 and "probe_c" in settings
    calibrated = train.calibrate(
        engines, validation, args,
        train.read(splits.train, size, "training photos") if frozen_base else None,
        settings.get("probe_c"))
    served = engines[card["metrics_variant"]]
    served.card = dict(served.card, calibration=calibrated)
    for split, split_photos in photos.items():
        if split_photos is None or split not in card["metrics"]:
            continue
        scores = evaluate.predict_pixels(served, split_photos.pixels)
        measured = evaluate.score(scores, split_photos.labels, split_photos.examples,
                                  card["classes"], split_photos.name,
                                  not_sure_below=served.not_sure_below)
        recorded = card["metrics"][split]
        if split == "validation" and not same_answers(measured, recorded):
            log.error("this validation split (%d photos, accuracy %.4f) is not the training run's "
                      "(%d photos, accuracy %.4f): run with the arguments the model was trained "
                      "with", measured["n"], measured["accuracy"], recorded["n"], recorded["accuracy"])
            return 1
        recorded["not_sure"] = measured["not_sure"]
        log.info("%s: not sure on %.1f %%, verdicts given %.2f %% right", split,
                 100 * measured["not_sure"]["not_sure_share"],
                 100 * measured["not_sure"]["given_accuracy"])
    card.pop("not_sure_below", None)  # the uncalibrated level it replaces
    card["calibration"] = calibrated
    command = training_card.reproduce_command("training.calibrate",
                                             list(sys.argv[1:] if argv is None else argv))
    card["reproduce"] = training_card.with_command(card["reproduce"], command, "training.calibrate")
    model_card.write(args.out, card)
    for variant, figures in calibrated["variants"].items():
        log.info("%s %s: temperature %.3f, not sure below %.4f", card["name"], variant,
                 figures["temperature"], figures["not_sure_below"])
    return 0


def uncalibrated(model: Model) -> Model:
    """`model` scoring as its network does: calibration is fitted on raw scores."""
    model.card = dict(model.card, calibration={})
    return model


def same_answers(measured: dict, recorded: dict) -> bool:
    """The same photos answered the same way (calibration changes no verdict and, for
    two classes, no ranking)."""
    return ((measured["n"], measured["confusion_matrix"]) == (recorded["n"], recorded["confusion_matrix"])
            and abs(measured.get("roc_auc", 0) - recorded.get("roc_auc", 0)) < 1e-6)


if __name__ == "__main__":
    sys.exit(main())
