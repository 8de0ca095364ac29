"""The records database as the IVR's call services (``ivr.actions.CallServices``, structurally).

The IVR's ``open_complaint`` and ``record_survey`` actions speak in the call's terms (its contact
id and caller number); this adapter turns that into the stores' calls: the complaint is opened on
the ``ivr`` channel, linked to the caller's customer when the number is known (or the call was
linked with ``ContactStore.link_customer``), and a retried
action finds the complaint already opened for the call (same contact id and category).

Wiring, on the controller's one engine::

    services = IvrServices(store, deadlines=deadlines(settings.complaint_deadlines))
    CallDeps(..., lookup=CustomerStore(store.sessions).lookup, services=services)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from contacts.complaint_rules import DEFAULT_DEADLINES, Channel, Deadline
from contacts.complaints import ComplaintStore
from contacts.customers import CustomerStore
from contacts.store import ContactStore

log = logging.getLogger(__name__)


class IvrServices:
    """Complaints and surveys for the IVR's actions, on a :class:`ContactStore`'s engine."""

    def __init__(self, store: ContactStore, *, deadlines: Mapping[str, Deadline] = DEFAULT_DEADLINES) -> None:
        self.store = store
        self.complaints = ComplaintStore(store.sessions, deadlines=deadlines)
        self.customers = CustomerStore(store.sessions)

    async def open_complaint(self, *, contact_id: str, caller: str | None, category: str, recording: str | None) -> str:
        """Open (or find, on a retry) the call's complaint; returns the number to read back.

        Raises ``contacts.UnknownCategory`` for a category without a deadline.
        """
        customer = await self.customers.lookup(caller)
        customer_id = customer.id if customer is not None else None
        if customer_id is None:  # withheld number: the IVR may have linked the call already
            contact = await self.store.get(contact_id)
            customer_id = contact.customer_id if contact is not None else None
        record = await self.complaints.open(
            contact_id=contact_id,
            customer_id=customer_id,
            caller=caller,
            category=category,
            recording=recording,
            channel=Channel.IVR.value,
            description=None,
        )
        return record.number

    async def record_survey(self, *, contact_id: str, score: int | None, solved: bool | None) -> None:
        """Store the post-call survey; an unknown contact is logged, not raised (the caller is done)."""
        if not await self.store.record_survey(contact_id, score, solved):
            log.warning("survey for unknown contact %s not stored", contact_id)
