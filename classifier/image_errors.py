"""What can be wrong with an upload, as exceptions with a stable `code` and HTTP status
that the API, the pages and batch rows all report."""

from __future__ import annotations


class ImageError(ValueError):
    """An upload that cannot be turned into a photo. `code` is stable for API clients."""

    code = "invalid_image"
    status = 422

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class EmptyImage(ImageError):
    code = "empty_file"
    status = 400


class UnsupportedImage(ImageError):
    code = "unsupported_media_type"
    status = 415


class CorruptImage(ImageError):
    code = "corrupt_image"
    status = 422


class ImageTooLarge(ImageError):
    code = "image_too_large"
    status = 422


class DecodingTooCostly(ImageError):
    """A photo (or a request's photos together) that would cost more to decode than allowed."""

    code = "decoding_too_costly"
    status = 422
