"""The one check every method that calls CIS or writes through sudo runs on its caller.

A button's ``groups`` only hides the button: its method stays callable over JSON-RPC. So each such
method asks here, for the requesting user (never for superuser mode), whether that user is in the
group the button requires and may ``operation`` these very records (access rights and record
rules, the multi-company rules included).
"""

from odoo.exceptions import AccessError

ESD_USER = "microsoft_esd.group_esd_user"
ESD_MANAGER = "microsoft_esd.group_esd_manager"


def check_caller(records, group=ESD_USER, operation="write"):
    """Raise AccessError unless the requesting user is in ``group`` and may ``operation``."""
    user = records.env.user
    if not user.has_group(group):
        raise AccessError(
            records.env._(
                "%(user)s may not do this: it is reserved to %(group)s.",
                user=user.name,
                group=records.env.ref(group).sudo().full_name,
            )
        )
    records.with_user(user).check_access(operation)


def check_companies(env, companies, what):
    """Raise AccessError unless every company of ``companies`` (the ESD companies of the records
    acted on) is one the requesting user works in now: one company's ESD people act on that
    company's ESD only, whatever record is shared between companies."""
    foreign = companies.sudo() - env.companies
    if foreign:
        raise AccessError(
            env._(
                "%(what)s belongs to the Microsoft ESD of %(companies)s: switch to that company "
                "(its ESD managers decide for it).",
                what=what,
                companies=", ".join(foreign.mapped("name")),
            )
        )
