"""Who may call the reseller API: the one check every API operation runs on its caller.

A portal user of a reseller that an ESD manager made an API user (an ``esd.grant`` of scope
``api``, recorded in the contact's chatter) calls the API in the company of its grant. Everyone
else (another portal user, an employee, a grant that ended because the contact moved, its login
or email changed, it was archived, merged or invited again) is refused. Decided for the
requesting user, never for superuser mode.
"""

from odoo.exceptions import AccessError


def api_grant(env):
    """The grant that lets the requesting user call the reseller API now; AccessError if none.

    The grant of the user's own company first, when it has grants in several companies. It is
    returned as sudo, for Odoo's own code to read (a portal user does not read grants).
    """
    user = env.user
    grants = env["esd.grant"]._esd_valid_grants(user, "api").sudo() if not env.su else None
    if not grants:
        raise AccessError(
            env._("%s is not allowed to use the reseller API: ask us to allow it.", user.name)
        )
    return grants.filtered(lambda g: g.company_id == user.company_id)[:1] or grants[:1]


def api_env(env):
    """``env`` as the API works in it: the caller's rights, its grant's company only (record
    rules see nothing of another company), and its grant."""
    grant = api_grant(env)
    return env(context=dict(env.context, allowed_company_ids=grant.company_id.ids)), grant
