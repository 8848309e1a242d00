"""The life of a license, as one state machine.

A license's stored fields (provisioning, cancellation, return) say where it is; :func:`derive`
turns them into one lifecycle state, and :data:`TRANSITIONS` says which state each change may
start from. ``esd.asset._esd_update_state`` applies a change to the licenses in an allowed
state and logs and leaves the others, as Odoo's ``payment.transaction._update_state`` does.
``python -m microsoft_esd.lifecycle`` prints the machine as a Mermaid diagram
(docs/architecture.md holds it; a test checks it is current).

The status at Microsoft (Activated, Redeemed, Return Accepted) is another dimension, with its
own rules in :mod:`microsoft_esd.licenses`.
"""

TO_ORDER = "to_order"
WAITING = "waiting"
FAILED = "failed"
DELIVERED = "delivered"
STOPPED = "stopped"
RETURN_REQUESTED = "return_requested"
RETURNED = "returned"
CREDITED = "credited"
RETURNED_ELSEWHERE = "returned_elsewhere"

STATES = [
    (TO_ORDER, "To Order"),
    (WAITING, "Waiting for Microsoft"),
    (FAILED, "Failed"),
    (DELIVERED, "Delivered"),
    (STOPPED, "Stopped"),
    (RETURN_REQUESTED, "Return Requested"),
    (RETURNED, "Returned, Credit Pending"),
    (CREDITED, "Returned and Credited"),
    (RETURNED_ELSEWHERE, "Returned at Microsoft"),
]

# change: (the states it may start from, the state it leads to, what causes it)
TRANSITIONS = {
    "waiting": ({TO_ORDER, WAITING}, WAITING, "CIS did not answer: retried with backoff"),
    "failed": ({TO_ORDER, WAITING}, FAILED, "CIS refused, or did not answer for 24 h"),
    "pending": ({FAILED}, TO_ORDER, "Retry provisioning"),
    "delivered": ({TO_ORDER, WAITING}, DELIVERED, "CIS delivered the key"),
    "stopped": ({TO_ORDER, FAILED}, STOPPED, "its order was cancelled"),
    "redeemed": ({DELIVERED, RETURN_REQUESTED}, DELIVERED, "the customer redeemed the key"),
    "return_requested": ({DELIVERED}, RETURN_REQUESTED, "Cancel License"),
    "return_refused": ({RETURN_REQUESTED}, DELIVERED, "CIS refused the return"),
    "returned": ({RETURN_REQUESTED}, RETURNED, "CIS accepted the return"),
    "returned_elsewhere": ({DELIVERED}, RETURNED_ELSEWHERE, "CIS reports a return"),
    "credited": ({RETURNED, RETURNED_ELSEWHERE}, CREDITED, "credit note posted"),
}


# A license may be archived once nothing about it is open: never ordered and stopped, or returned
# and credited. A license waiting, failed (it may still be retried, stopped or credited),
# delivered, or being returned stays where every list and job sees it.
ARCHIVABLE = {STOPPED, CREDITED}


def archivable(current):
    """Whether a license in state ``current`` may be archived."""
    return current in ARCHIVABLE


def deletable(current, cis_may_hold, has_cis_license):
    """Whether a license may be deleted: only one that Microsoft cannot hold, stopped before it
    was delivered and with no CIS answer left unknown. Everything else is proof of a sale or of
    an order Microsoft may have."""
    return current == STOPPED and not cis_may_hold and not has_cis_license


def derive(state, sync_status, return_state, waiting=False):
    """The lifecycle state of a license from its stored fields.

    ``state`` is active/cancelled, ``sync_status`` unsynchronised/synchronized/failed,
    ``return_state`` none/requested/accepted/done/external; ``waiting``: CIS did not answer an
    order not yet delivered, which is retried later.
    """
    by_return = {
        "requested": RETURN_REQUESTED,
        "accepted": RETURNED,
        "done": CREDITED,
        "external": RETURNED_ELSEWHERE,
    }
    if return_state in by_return:
        return by_return[return_state]
    if state == "cancelled":
        return STOPPED
    if sync_status == "synchronized":
        return DELIVERED
    if sync_status == "failed":
        return FAILED
    return WAITING if waiting else TO_ORDER


def allowed(change, current):
    """Whether ``change`` may be applied to a license in state ``current``."""
    sources, _target, _cause = TRANSITIONS[change]
    return current in sources


def mermaid():
    """The state machine as a Mermaid state diagram (docs/architecture.md)."""
    lines = ["stateDiagram-v2", f"    [*] --> {TO_ORDER}: order confirmed"]
    lines += [f"    {code}: {label}" for code, label in STATES]
    for _change, (sources, target, cause) in TRANSITIONS.items():
        lines += [f"    {source} --> {target}: {cause}" for source in sorted(sources)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(mermaid())
