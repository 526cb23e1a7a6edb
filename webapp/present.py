"""How answers are worded and coloured on the pages (static/js/wording.js mirrors these rules)."""

from __future__ import annotations

from collections.abc import Sequence

from flask import current_app


def pretty(label: str) -> str:
    """'not_hotdog' -> 'not hotdog'."""
    return label.replace("_", " ")


def verdict(label: str, labels: Sequence[str]) -> str:
    """'hotdog' -> 'Hotdog!', 'not_hotdog' -> 'Not hotdog!' for a yes/no model; the
    best class, capitalised, for a model of more classes ('Menu')."""
    words = pretty(label)
    words = words[:1].upper() + words[1:]
    return words + "!" if len(labels) == 2 else words


def tone(label: str, labels: Sequence[str]) -> str:
    """Bootstrap colour of a verdict: green for yes, red for a `not_` class, blue for
    the best of many classes."""
    if len(labels) != 2:
        return "primary"
    return "danger" if label.startswith("not_") else "success"


#: What the page tells people for each error code the API can answer, in plain words:
#: no form-field names, no library messages (static/js/api.js turns the page's copy of it into errors).
PEOPLE_MESSAGES = {
    "missing_image": "Choose a photo first.",
    "empty_file": "That file is empty. Choose another photo.",
    "too_many_files": "That is too many photos at once. Send {max_files} or fewer.",
    "payload_too_large": "That upload is too big (the limit is {max_mb} MB). Try a smaller photo.",
    "unsupported_media_type": "That file is not a photo we can read. "
                              "Try a JPEG, PNG, WebP, GIF or HEIC photo.",
    "corrupt_image": "That photo seems damaged or incomplete. Try saving it again, or choose another.",
    "image_too_large": "That picture has too many pixels to read safely. Try a smaller version.",
    "decoding_too_costly": "That photo would take us too long to read. Try it as a JPEG, "
                           "or a smaller version.",
    "no_digit": "No digit found: the picture looks blank. Draw or photograph one digit.",
    "unknown_model": "That model is not available any more. Reload the page and pick another.",
    "too_many_requests": "You sent a lot in a short time. Please wait a minute and try again.",
    "csrf_failed": "This page has expired. Reload it and try again.",
    "token_used": "You already told us about this answer. Thank you!",
    "token_expired": "This answer is too old for feedback. Send the photo again to get a new one.",
}
GENERIC_MESSAGE = "Something went wrong on our side. Please try again in a moment."


def for_people(code: str) -> str:
    """The plain-words message for an error code, with this server's limits in it."""
    config = current_app.config
    return PEOPLE_MESSAGES.get(code, GENERIC_MESSAGE).format(
        max_files=config["MAX_FILES_PER_REQUEST"], max_mb=round(config["MAX_CONTENT_LENGTH"] / 2**20))


def register(app) -> None:
    app.jinja_env.filters.update(pretty=pretty, verdict=verdict, tone=tone, for_people=for_people,
                                 percent=lambda score: round(100 * score))
