"""How a signed partner message's body is read: under the partner message cap
(`MAX_PARTNER_MESSAGE_BYTES`), far below the upload cap, so that an unsigned
giant body is refused before it is read, let alone verified."""
from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from disbursement.services.tracking import inbound
from disbursement.web.auth import services
from disbursement.web.errors import ApiError


def signed_request() -> inbound.SignedRequest:
    """The request as the signature covers it: the raw body, read before any
    parsing, at most the cap.

    werkzeug enforces `request.max_content_length` if it is set before the
    request's stream exists: a Content-Length above it is refused at once,
    before a byte is read; a body without one (chunked) is read up to it and
    then silently cut. Hence the limit is one byte past the cap: a body that
    fills it is longer than the cap, refused the same way."""
    cap = services().settings.max_partner_message_bytes
    request.max_content_length = cap + 1
    try:
        if (request.content_length or 0) > cap:
            raise RequestEntityTooLarge()
        body = request.get_data(cache=False)
        if len(body) > cap:
            raise RequestEntityTooLarge()
    except RequestEntityTooLarge:
        raise ApiError(413, "request_entity_too_large",
                       f"partner message larger than {cap} bytes",
                       {"max_bytes": cap}) from None
    return inbound.SignedRequest(request.method, request.path, request.query_string,
                                 request.headers, body)
