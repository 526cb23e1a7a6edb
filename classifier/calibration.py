"""Calibrated scores and the "not sure" level: one rule for every model.

A network's top score says how sure it is, but not in a unit a person can trust: the
shipped networks are over- or under-confident by a factor of their own. Temperature
scaling fixes the unit with one number per file: scores become softmax(logits / T),
with T fitted on held-out answers (the validation split, or cross-validation for a model
made on the server) so that a score of 0.9 is right about 9 times in 10. T changes no
verdict, only how sure each one says it is.

The level then follows from a target the model card states in plain words: "of the
verdicts we give, at least 98.5 % are right". Answers are sorted from most to least
sure; the level is the lowest calibrated score at which the answers above it are still
expected (by their calibrated scores) to be right that often. Under it the service
answers "not sure", with its best guess and score beside it. The expectation rests on
every held-out answer, and each answer's calibrated score comes from a temperature
fitted without it (k-fold), so the level is not read off a few dozen flukes.

NumPy only: the server runs this when a user makes a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Folds of the cross-validated temperature (fewer when a class has fewer answers).
FOLDS = 5
#: Temperatures tried: 1/20 to 20, evenly spaced in log T, then as many again around
#: the best of those (about 0.3 % apart).
LOG_TEMPERATURES = np.linspace(np.log(0.05), np.log(20.0), 61)
#: Scores can be 0 (an int8 network's come in steps of 1/256; the API rounds to 6
#: places): logits are taken of scores floored here, so that every one is finite.
SMALLEST_SCORE = 1e-6


def logits_of(scores: np.ndarray) -> np.ndarray:
    """Logits (up to a constant per answer) of softmax scores (the last axis)."""
    return np.log(np.clip(scores, SMALLEST_SCORE, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (the last axis), shifted so exp cannot overflow."""
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def scaled(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Class probabilities of `logits` at `temperature`."""
    return softmax(logits / temperature)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log-loss of `labels` (a grid search, coarse
    then fine: one number, and the loss is smooth in it)."""
    rows = np.arange(len(labels))

    def best(log_temperatures: np.ndarray) -> float:
        losses = [-np.log(scaled(logits, np.exp(t))[rows, labels] + 1e-12).mean()
                  for t in log_temperatures]
        return float(log_temperatures[int(np.argmin(losses))])

    step = LOG_TEMPERATURES[1] - LOG_TEMPERATURES[0]
    coarse = best(LOG_TEMPERATURES)
    return float(np.exp(best(np.linspace(coarse - step, coarse + step, len(LOG_TEMPERATURES)))))


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """A fold number for each answer, every class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), int)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        fold[members] = np.arange(len(members)) % folds
    return fold


def cross_validated(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each answer's calibrated probabilities at a temperature fitted on the others."""
    folds = min(FOLDS, int(np.bincount(labels).max()))
    fold = stratified_folds(labels, folds)
    probabilities = np.zeros_like(logits, dtype=np.float64)
    for k in range(folds):
        held = fold == k
        probabilities[held] = scaled(logits[held], fit_temperature(logits[~held], labels[~held]))
    return probabilities


def level_for(confidence: np.ndarray, target: float) -> float:
    """The lowest score at which the answers scored at least that are expected to be
    right `target` of the time (the mean of their calibrated scores); midway down to the
    next lower score, so that ties fall on the same side. 1.0 when no score reaches it."""
    ranked = np.sort(confidence)[::-1]  # most sure first
    expected = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
    # A level can only fall after the last of equal scores.
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    reaching = ends[expected[ends] >= target]
    if not reaching.size:
        return 1.0
    last = int(reaching[-1])
    below = ranked[last + 1] if last + 1 < len(ranked) else 0.0
    return float((ranked[last] + below) / 2)


@dataclass(frozen=True)
class Calibration:
    """One file's temperature and "not sure" level, and what they did on the held-out
    answers they were chosen on (each scored at a temperature fitted without it)."""

    temperature: float
    not_sure_below: float
    answers: int
    not_sure_share: float
    given_accuracy: float

    def as_card(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value
                for key, value in asdict(self).items()}


def calibrate(logits: np.ndarray, labels: np.ndarray, target: float) -> Calibration:
    """Temperature and level from held-out answers' logits and true labels."""
    held_out = cross_validated(logits, labels)
    level = level_for(held_out.max(axis=1), target)
    return Calibration(temperature=fit_temperature(logits, labels), not_sure_below=level,
                       answers=len(labels), **not_sure_figures(held_out, labels, level))


def rule(target: float) -> str:
    """The card's words for the rule, for people."""
    return (f"scores are calibrated on held-out photos, so that a score of 90 % is right about "
            f"9 times in 10; under the level the answer is \"not sure\", so that of the "
            f"verdicts given at least {100 * target:g} % are expected to be right")


def not_sure_figures(probabilities: np.ndarray, labels: np.ndarray, level: float) -> dict:
    """How often answers at these (calibrated) scores are "not sure", and how often the
    verdicts given are right: the card's figures for a labelled set."""
    given = probabilities.max(axis=1) >= level
    right = probabilities.argmax(axis=1) == labels
    return {"not_sure_share": round(float(1 - given.mean()), 4),
            "given_accuracy": round(float(right[given].mean()), 4) if given.any() else 0.0}
