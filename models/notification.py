"""The one helper that builds Odoo's "display_notification" client action."""

CLOSE = {"type": "ir.actions.act_window_close"}
RELOAD = {"type": "ir.actions.client", "tag": "soft_reload"}


def notification(title, message, kind="success", sticky=None, next_action=None):
    """A toast: ``kind`` is success, warning, danger or info; errors stay until closed."""
    return {
        "type": "ir.actions.client",
        "tag": "display_notification",
        "params": {
            "title": title,
            "message": message,
            "type": kind,
            "sticky": kind == "danger" if sticky is None else sticky,
            "next": next_action or False,
        },
    }
