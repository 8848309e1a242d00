import json

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, Unauthorized

from odoo import models
from odoo.exceptions import AccessDenied, AccessError, MissingError, UserError
from odoo.http import Response, SessionExpiredException, request

from ..microsoft_esd.api import PREFIX, PROBLEM_CONTENT_TYPE, Problem


def as_problem(exception):
    """The problem details an error of the reseller API answers with."""
    if isinstance(exception, Problem):
        return exception
    if isinstance(exception, (Unauthorized, AccessDenied, SessionExpiredException)):
        return Problem("unauthorized")
    if isinstance(exception, (NotFound, MissingError)):
        return Problem("not-found")
    if isinstance(exception, MethodNotAllowed):
        return Problem("method-not-allowed")
    if isinstance(exception, AccessError):
        return Problem("forbidden")
    if isinstance(exception, UserError):
        return Problem("validation-failed", str(exception))
    if isinstance(exception, HTTPException) and exception.code and exception.code < 500:
        return Problem("invalid-request", exception.description)
    return Problem("internal-error")


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _handle_error(cls, exception):
        """Errors of the reseller API are RFC 9457 problem details, never an HTML page."""
        if request and request.httprequest.path.startswith(PREFIX + "/"):
            problem = as_problem(exception)
            headers = {"Content-Type": PROBLEM_CONTENT_TYPE, **problem.headers}
            if problem.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="microsoft_esd"'
            body = problem.body(instance=request.httprequest.path)
            return Response(json.dumps(body), status=problem.status, headers=list(headers.items()))
        return super()._handle_error(exception)
