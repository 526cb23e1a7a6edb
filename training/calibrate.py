"""Give a trained model its "not sure" level again, from its own validation split.

    python -m training.calibrate DATA_DIR --out models/NAME [the training options]

Takes the very arguments `training.train` was run with (only the module name
changes), rebuilds that run's validation split with training's own code, and
predicts it with the shipped file the card's metrics describe. The model card then
gets `not_sure_below`: the top score under which answers are too often wrong to be
given as a verdict (`training.evaluate.not_sure_below`; the server answers "not
sure" below it). Nothing is retrained.

Why: models trained before the level existed (the hot dog model of 22 Nov 2026)
have none, so they never say "not sure". The level must come from the validation
split, never from the test photos whose figures the card reports. As a check that
the split really is the training run's, the shipped file's answers on it must
reproduce the card's validation confusion matrix (and ROC AUC, for two classes)
exactly; otherwise nothing is written.
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
    model = Model.from_directory(args.out, variant=card["metrics_variant"])
    try:
        splits = train.gather(args)
        if splits.classes != card["classes"]:
            raise DataError(f"the data's classes {splits.classes} are not the card's {card['classes']}")
    except DataError as exc:
        log.error("%s", exc)
        return 2
    validation = train.read(splits.validation, model.input_size, train.VALIDATION)
    scores = evaluate.predict_pixels(model, validation.pixels)
    measured = evaluate.score(scores, validation.labels, validation.examples, card["classes"],
                              validation.name)
    recorded = card["metrics"]["validation"]
    same = ((measured["n"], measured["confusion_matrix"]) == (recorded["n"], recorded["confusion_matrix"])
            and abs(measured.get("roc_auc", 0) - recorded.get("roc_auc", 0)) < 1e-6)
    if not same:
        log.error("this validation split (%d photos, accuracy %.4f) is not the training run's "
                  "(%d photos, accuracy %.4f): run with the arguments the model was trained with",
                  measured["n"], measured["accuracy"], recorded["n"], recorded["accuracy"])
        return 1
    card["not_sure_below"] = evaluate.not_sure_below(scores, validation.labels)
    command = training_card.reproduce_command("training.calibrate",
                                             list(sys.argv[1:] if argv is None else argv))
    card["reproduce"] = "\n".join([*(line for line in card["reproduce"].splitlines()
                                      if "training.calibrate" not in line), command])
    model_card.write(args.out, card)
    log.info("%s: not sure below %.4f (%d of %d validation answers, %d of them wrong)",
             card["name"], card["not_sure_below"]["confidence"],
             card["not_sure_below"]["answers_below"], measured["n"],
             card["not_sure_below"]["wrong_below"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
