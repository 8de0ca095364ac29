"""Contact records: one row per call leg, the IVR path it took and how it ended.

Public surface (everything else is internal)::

    from contacts import ContactStore, Outcome, upgrade

    await upgrade(settings.db_url)          # on every start; never drops data
    async with ContactStore(settings.db_url) as store:
        await store.start_contact(...)
"""

from contacts.cli import db_upgrade, parcel_set, print_recent
from contacts.db import async_url, current_revision, head_revision, make_engine, upgrade
from contacts.records import (
    ContactRecord,
    IvrStep,
    Outcome,
    ParcelStatus,
    make_step,
    parse_step,
)
from contacts.store import ContactStore

__all__ = [
    "ContactRecord",
    "ContactStore",
    "IvrStep",
    "Outcome",
    "ParcelStatus",
    "async_url",
    "current_revision",
    "db_upgrade",
    "head_revision",
    "make_engine",
    "make_step",
    "parcel_set",
    "parse_step",
    "print_recent",
    "upgrade",
]
