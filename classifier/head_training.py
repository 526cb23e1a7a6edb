"""Training a dense head in NumPy, in seconds: what "make your own model" runs.

A model made on the server is a dense softmax layer on the pooled feature maps of
networks the server already runs (EfficientNet-Lite0, the imagenet model's, then the
hot dog model's MobileNetV2), exactly the kind of head `classifier.model` applies for
the shipped photo-type model, which reads the same two. Fitting it needs no
TensorFlow: it is a multinomial logistic regression with an L2 penalty on a few dozen
feature vectors, solved here by accelerated full-batch gradient descent.

With 15-20 photos a class, two cheap tricks matter: each photo's horizontal mirror is
a second training example (a hot dog is one either way round), and the L2 penalty is
strong, as a layer on 2,560 features fits a few dozen photos exactly otherwise (a
centre crop as a third example measured no better: bench/made_model.py). How
good the result is gets estimated by stratified cross-validation on the photos given
(a photo and its mirror always in the same fold), scoring each held-out photo as the
server will: its own features, unmirrored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from classifier.calibration import calibrate, softmax, stratified_folds
from classifier.litert import Network

#: L2 penalty on the kernel, for centred features scaled to unit mean square: chosen
#: on real photos of ../shared (bench/made_model.py). Up to about 0.1 it changes little
#: (the fixed number of steps regularises too); 1 gains a point on hot dogs against
#: other food and costs nothing on food against ambience; 100 and more trade one for
#: the other. With the hot dog network's features beside Lite0's, 0.1 to 10 all
#: scored within 0.3 points of each other on every task.
L2_PENALTY = 1.0
#: Gradient steps of a fit: enough for the loss to settle on a few hundred examples
#: (later steps move no held-out answer), a few milliseconds each.
STEPS = 300
#: Folds of the cross-validation (fewer when a class has fewer photos).
FOLDS = 5
#: How often a made model's verdicts must be expected to be right; under the level this
#: sets on its cross-validated answers it says "not sure" (as the hot dog model does).
ANSWER_ACCURACY = 0.98


@dataclass(frozen=True)
class Head:
    """A fitted dense layer: pooled features (1 x d) @ kernel (d x classes) + bias."""

    kernel: np.ndarray
    bias: np.ndarray

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(features @ self.kernel + self.bias)


@dataclass(frozen=True)
class Estimate:
    """How well heads fitted this way do on photos they were not given, by stratified
    cross-validation: accuracy, the confusion matrix (rows: true class) and each photo
    answered wrongly (its index, the class it was given, the class predicted, the score);
    and the temperature and "not sure" level fitted on those held-out answers
    (`classifier.calibration.Calibration.as_card`; None in a token from before them)."""

    accuracy: float
    folds: int
    confusion: list[list[int]]
    wrong: list[tuple[int, str, str, float]]
    calibration: dict | None = None


def pooled_features(networks: Sequence[Network], images: Sequence[np.ndarray]) -> np.ndarray:
    """Each image's pooled feature maps and its mirror's: shape (images, 2, channels),
    the channels of each network in turn. Each map is pooled by its mean over height
    and width, and the networks' stacked, as `Model.prediction` does for a model with
    extra feature networks."""
    pairs = [image for pixels in images for image in (pixels, pixels[:, ::-1])]
    pooled = [np.stack([feature_map.mean(axis=(0, 1))
                        for _, feature_map in network.run(pairs, features=True)])
              for network in networks]
    return np.concatenate(pooled, axis=-1).reshape(len(images), 2, -1).astype(np.float32)


def fit(features: np.ndarray, labels: np.ndarray, classes: int) -> Head:
    """A head for `features` (photos, 2, d: each photo and its mirror) labelled with
    class indices `labels`: a multinomial logistic regression with L2, fitted on both
    views of every photo.

    Started from zero, every gradient step keeps the kernel a combination of the
    examples (kernel = x' alpha), so the steps run on alpha and the examples' Gram
    matrix: (examples x examples) work instead of (examples x 1280), a few ms a fit."""
    x = features.reshape(-1, features.shape[-1]).astype(np.float64)
    y = np.repeat(labels, features.shape[1])
    # Centred, so the penalty does not fight the part every photo shares (the bias
    # takes it); one scale for all features keeps the penalty the same for each,
    # whatever the network's units (Lite0's and the hot dog network's pooled features
    # have nearly the same spread, 0.36 and 0.38 RMS on ../shared's photos: a scale
    # per network or per feature measured no better, per feature worse). Both are
    # folded back into the head at the end.
    centre = x.mean(axis=0)
    scale = float(np.sqrt(np.mean((x - centre) ** 2))) or 1.0
    x = (x - centre) / scale
    gram, targets, n = x @ x.T, np.eye(classes)[y], len(x)
    # 1 / Lipschitz constant of the gradient: the softmax loss's curvature is at most
    # half the largest eigenvalue of x'x / n, plus the penalty's.
    step = 1.0 / (0.5 * np.linalg.eigvalsh(gram)[-1] / n + L2_PENALTY)
    alpha, bias = np.zeros((n, classes)), np.log(targets.mean(axis=0) + 1e-9)
    ahead_a, ahead_b, momentum = alpha, bias, 1.0
    for _ in range(STEPS):  # Nesterov's accelerated gradient
        error = (softmax(gram @ ahead_a + ahead_b) - targets) / n
        new_a = ahead_a - step * (error + L2_PENALTY * ahead_a)
        new_b = ahead_b - step * error.sum(axis=0)
        next_momentum = (1 + np.sqrt(1 + 4 * momentum ** 2)) / 2
        blend = (momentum - 1) / next_momentum
        ahead_a, ahead_b = new_a + blend * (new_a - alpha), new_b + blend * (new_b - bias)
        alpha, bias, momentum = new_a, new_b, next_momentum
    kernel = x.T @ alpha / scale
    return Head(kernel.astype(np.float32), (bias - centre @ kernel).astype(np.float32))


def cross_validate(features: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                   seed: int = 0) -> Estimate:
    """Accuracy of `fit` on photos it was not given: each photo is held out once, in
    stratified folds, and answered from its own (unmirrored) features."""
    classes = len(class_names)
    folds = max(2, min(FOLDS, int(np.bincount(labels, minlength=classes).min())))
    fold_of = stratified_folds(labels, folds, seed)
    logits = np.empty((len(labels), classes))
    for fold in range(folds):
        held = fold_of == fold
        head = fit(features[~held], labels[~held], classes)
        logits[held] = features[held, 0] @ head.kernel + head.bias
    predicted = softmax(logits)
    answers = predicted.argmax(axis=1)
    confusion = np.zeros((classes, classes), int)
    np.add.at(confusion, (labels, answers), 1)
    wrong = [(int(i), class_names[labels[i]], class_names[answers[i]], round(float(predicted[i].max()), 4))
             for i in np.flatnonzero(answers != labels)]
    return Estimate(float(np.mean(answers == labels)), folds, confusion.tolist(), wrong,
                    calibrate(logits, labels, ANSWER_ACCURACY).as_card())
