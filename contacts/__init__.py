"""Records and customers: contact records, customers and caller lookup, complaints, surveys, privacy.

Public surface (everything else is internal). One engine per process: :class:`ContactStore` owns
it; the other stores and the privacy functions take its ``sessions``::

    from contacts import ComplaintStore, ContactStore, CustomerStore, mask_number, upgrade

    await upgrade(settings.db_url)          # on every start; never drops data
    async with ContactStore(settings.db_url) as store:
        await store.start_contact(...)
        customer = await CustomerStore(store.sessions).lookup(caller)      # None for guests
        complaint = await ComplaintStore(store.sessions).open(...)
        await store.record_survey(contact_id, 4, True)
        services = IvrServices(store)       # the IVR actions' CallServices
        log.info("call from %s", mask_number(caller))
"""

from contacts.agent_log import AgentStateLog
from contacts.cli import (
    customer_erase,
    customer_export,
    customers_import,
    db_upgrade,
    parcel_set,
    print_recent,
    purge_data,
)
from contacts.complaint_rules import (
    DEFAULT_DEADLINES,
    TRANSITIONS,
    Channel,
    ComplaintError,
    ComplaintStatus,
    Deadline,
    IllegalTransition,
    UnknownCategory,
    UnknownComplaint,
    deadlines,
    due_date,
)
from contacts.complaints import ComplaintEventRecord, ComplaintRecord, ComplaintStore, UnknownCustomer
from contacts.customers import CustomerIn, CustomerRecord, CustomerStore
from contacts.db import async_url, current_revision, head_revision, make_engine, upgrade
from contacts.imports import ImportFileError, ImportReport, Rejection, import_customers
from contacts.ivr_services import IvrServices
from contacts.phones import mask_number, normalise_number
from contacts.privacy import (
    ErasureError,
    ErasureReport,
    PurgeReport,
    RemoveFile,
    RetentionPolicy,
    erase_subject,
    export_subject,
    folder_remover,
    purge,
)
from contacts.records import (
    ContactRecord,
    IvrStep,
    Outcome,
    ParcelStatus,
    SurveyRecord,
    make_step,
    parse_step,
)
from contacts.store import ContactStore

__all__ = [
    "DEFAULT_DEADLINES",
    "TRANSITIONS",
    "AgentStateLog",
    "Channel",
    "ComplaintError",
    "ComplaintEventRecord",
    "ComplaintRecord",
    "ComplaintStatus",
    "ComplaintStore",
    "ContactRecord",
    "ContactStore",
    "CustomerIn",
    "CustomerRecord",
    "CustomerStore",
    "Deadline",
    "ErasureError",
    "ErasureReport",
    "IllegalTransition",
    "ImportFileError",
    "ImportReport",
    "IvrServices",
    "IvrStep",
    "Outcome",
    "ParcelStatus",
    "PurgeReport",
    "Rejection",
    "RemoveFile",
    "RetentionPolicy",
    "SurveyRecord",
    "UnknownCategory",
    "UnknownComplaint",
    "UnknownCustomer",
    "async_url",
    "current_revision",
    "customer_erase",
    "customer_export",
    "customers_import",
    "db_upgrade",
    "deadlines",
    "due_date",
    "erase_subject",
    "export_subject",
    "folder_remover",
    "head_revision",
    "import_customers",
    "make_engine",
    "make_step",
    "mask_number",
    "normalise_number",
    "parcel_set",
    "parse_step",
    "print_recent",
    "purge",
    "purge_data",
    "upgrade",
]
