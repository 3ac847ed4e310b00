"""The bundled documentation corpus of "Acme Cloud", the fictional product the demo assistant supports.

Plain Python data so it ships inside the package with no data files to locate. Every page belongs to one
feature. One page is *archived*: the retirement notice of the 2021 "Smart Sync" desktop agent, kept in the
docs system for history. The current Smart Sync (relaunched later) is documented by the other
``smart-sync`` pages, which contradict the archived notice. The production incident of the demo is the
archived notice leaking back into the search index (see :mod:`flywheel_demo.app`).
"""

from __future__ import annotations

from dataclasses import dataclass

DOCS_BASE_URL = "https://docs.acme.example"

FEATURES: tuple[str, ...] = ("billing", "sso", "backups", "webhooks", "smart-sync", "api-keys", "teams")
INCIDENT_FEATURE = "smart-sync"


@dataclass(frozen=True)
class Doc:
    """One documentation page."""

    doc_id: str
    feature: str
    title: str
    text: str
    last_updated: str
    archived: bool = False

    @property
    def uri(self) -> str:
        """The page's address, used as the retrieved document's ``doc_uri``."""
        return f"{DOCS_BASE_URL}/{self.feature}/{self.doc_id}"


def _doc(doc_id: str, feature: str, title: str, text: str, last_updated: str, archived: bool = False) -> Doc:
    # Texts are written one sentence per line below; join them into one paragraph.
    return Doc(doc_id, feature, title, " ".join(text.split()), last_updated, archived)


DOCS: tuple[Doc, ...] = (
    # --- billing ---------------------------------------------------------------------------------------
    _doc(
        "billing-plans",
        "billing",
        "Plans and pricing",
        """Acme Cloud offers four plans: Free, Pro, Team and Enterprise.
        Pro costs $12 per user per month and Team costs $20 per user per month when billed monthly.
        Annual billing gives a 15% discount on the Pro and Team plans.
        Enterprise pricing is quoted by the sales team.""",
        "2025-01-10",
    ),
    _doc(
        "billing-invoices",
        "billing",
        "Invoices and receipts",
        """Invoices are issued on the first day of each billing cycle and emailed to the billing contact.
        Owners and billing admins can download PDF invoices from Settings > Billing > Invoices.
        To add a VAT number or a company address to invoices, edit the billing profile before the next cycle.
        Past invoices cannot be changed.""",
        "2024-11-02",
    ),
    _doc(
        "billing-payment-methods",
        "billing",
        "Updating payment methods",
        """Acme Cloud accepts credit cards, and bank transfer on annual Team and Enterprise plans.
        To change the card, open Settings > Billing > Payment method and choose Replace card.
        If a payment fails, Acme retries the charge after 3, 5 and 7 days.
        The workspace becomes read-only after 14 days without a successful payment.""",
        "2024-09-18",
    ),
    _doc(
        "billing-refunds",
        "billing",
        "Refunds and cancellations",
        """You can cancel a paid plan at any time from Settings > Billing > Cancel plan.
        The workspace keeps its paid features until the end of the current billing period.
        Monthly plans are not refunded for partial months.
        Annual plans cancelled within 30 days of purchase get a full refund; ask support to request it.""",
        "2024-12-05",
    ),
    _doc(
        "billing-seats",
        "billing",
        "Adding and removing seats",
        """Team and Enterprise workspaces are billed per active seat.
        Adding a member adds a prorated charge to the next invoice.
        Removing a member frees the seat immediately and the unused amount is credited on the next
        invoice.""",
        "2024-10-21",
    ),
    # --- sso ---------------------------------------------------------------------------------------------
    _doc(
        "sso-saml-setup",
        "sso",
        "Configuring SAML single sign-on",
        """Single sign-on (SSO) with SAML 2.0 is available on the Team and Enterprise plans.
        An owner configures it in Settings > Security > Single sign-on by uploading the identity provider
        metadata XML.
        SSO works with the identity providers Okta, Azure AD (Microsoft Entra ID), Google Workspace and
        OneLogin.
        The Assertion Consumer Service URL is https://login.acme.example/saml/acs.""",
        "2025-02-14",
    ),
    _doc(
        "sso-scim",
        "sso",
        "Provisioning users with SCIM",
        """On the Enterprise plan, SCIM 2.0 provisioning creates, updates and deactivates accounts from
        your identity provider.
        Generate a SCIM token in Settings > Security > Provisioning and paste it into Okta or Azure AD.
        Deprovisioned users lose access immediately and their files are transferred to the workspace
        owner.""",
        "2025-01-30",
    ),
    _doc(
        "sso-enforcement",
        "sso",
        "Enforcing SSO and break-glass access",
        """Owners can enforce SSO so that members must sign in through the identity provider.
        Enforcement blocks password logins for everyone except owners, who keep a break-glass password
        login in case the identity provider is down.
        Turn enforcement on in Settings > Security > Single sign-on > Require SSO.""",
        "2024-08-09",
    ),
    _doc(
        "sso-troubleshooting",
        "sso",
        "Troubleshooting SSO login errors",
        """The error SAML response signature invalid means the signing certificate stored in Acme Cloud does
        not match your identity provider; upload the new certificate after every certificate rotation.
        The error user not assigned means the user is not assigned to the Acme Cloud app in the identity
        provider.
        A clock drift of more than 5 minutes between servers also makes assertions fail.""",
        "2025-03-03",
    ),
    _doc(
        "sso-two-factor",
        "sso",
        "Two-factor authentication",
        """Members who sign in with a password can turn on two-factor authentication (2FA) with an
        authenticator app or a security key in Profile > Security.
        Owners can require 2FA for all password logins in the workspace.
        When SSO is enforced, multi-factor authentication is handled by the identity provider instead.""",
        "2024-07-22",
    ),
    # --- backups -----------------------------------------------------------------------------------------
    _doc(
        "backups-schedule",
        "backups",
        "Backup schedule and retention",
        """Acme Cloud takes a backup of every workspace on every plan automatically every 24 hours.
        Backup retention is 7 days on Free, 30 days on Pro, 90 days on Team and one year on Enterprise.
        Backups are encrypted and stored in a second region.""",
        "2025-01-05",
    ),
    _doc(
        "backups-restore",
        "backups",
        "Restoring files and folders from a backup",
        """To restore, open Settings > Backups, pick a backup date and select the files or folders to restore.
        Restored items are placed in a new folder named after the backup date, so current files are never
        overwritten.
        Restoring a whole workspace requires an owner and can take several hours for large workspaces.""",
        "2024-12-12",
    ),
    _doc(
        "backups-on-demand",
        "backups",
        "On-demand backups",
        """Owners on Team and Enterprise plans can start an on-demand backup from Settings > Backups > Back up
        now, for example before a large migration.
        On-demand backups follow the same retention period as scheduled backups.
        You can run up to 3 on-demand backups per day.""",
        "2024-10-01",
    ),
    _doc(
        "backups-export",
        "backups",
        "Exporting a backup",
        """An owner can export any backup as a ZIP archive or to an Amazon S3 bucket from Settings > Backups
        > Export.
        Download links for exports are valid for 7 days.
        Exports larger than 500 GB are delivered to S3 only.""",
        "2024-09-27",
    ),
    _doc(
        "backups-trash",
        "backups",
        "Recovering deleted files",
        """Deleted files stay in the Trash for 30 days and can be restored from there without a backup.
        After the Trash is emptied, restore the file from a backup taken before it was deleted.""",
        "2024-06-30",
    ),
    # --- webhooks ----------------------------------------------------------------------------------------
    _doc(
        "webhooks-create",
        "webhooks",
        "Creating a webhook",
        """Webhooks send an HTTPS POST request to your endpoint when events happen in a workspace.
        Create one in Settings > Developers > Webhooks by entering the endpoint URL and choosing events such
        as file.created, file.deleted, member.invited or backup.completed.
        Each workspace can have up to 20 webhooks.""",
        "2025-02-02",
    ),
    _doc(
        "webhooks-signatures",
        "webhooks",
        "Verifying webhook signatures",
        """Every webhook request carries an X-Acme-Signature header with an HMAC-SHA256 signature of the raw
        body, computed with the webhook signing secret.
        Compute the same HMAC on your side and compare it in constant time before trusting the payload.
        Rotate the signing secret on the webhook settings page; the old secret keeps working for 24 hours.""",
        "2024-11-19",
    ),
    _doc(
        "webhooks-retries",
        "webhooks",
        "Webhook delivery and retries",
        """Acme Cloud expects a 2xx response from your endpoint within 10 seconds.
        If your endpoint is down, failed deliveries are retried with exponential backoff for up to 24
        hours, 8 attempts in total.
        After 3 consecutive days of failures the webhook is disabled and the workspace owners are emailed.""",
        "2025-01-17",
    ),
    _doc(
        "webhooks-payloads",
        "webhooks",
        "Webhook event payloads",
        """Payloads are JSON objects with the fields id, type, created_at and data.
        The id is unique per event, so use it to ignore duplicate deliveries.
        Events are delivered at least once and may arrive out of order; sort by created_at if order
        matters.""",
        "2024-08-28",
    ),
    _doc(
        "webhooks-testing",
        "webhooks",
        "Testing webhooks",
        """Use the Send test event button on the webhook page to deliver a sample ping event.
        The Deliveries tab lists the last 100 requests with their response status and body for debugging.""",
        "2024-05-14",
    ),
    # --- smart-sync (current) ----------------------------------------------------------------------------
    _doc(
        "smart-sync-overview",
        "smart-sync",
        "Smart Sync overview and device limits",
        """Smart Sync keeps selected folders identical on all your devices in near real time.
        Smart Sync is available on every plan: Free includes 2 devices, Pro 5 devices, Team 10 devices per
        member and Enterprise unlimited devices.
        Smart Sync needs the Acme desktop app version 4.2 or later on Windows, macOS or Linux.""",
        "2025-03-01",
    ),
    _doc(
        "smart-sync-setup",
        "smart-sync",
        "Setting up Smart Sync on a new device",
        """Install the Acme desktop app, sign in and open Preferences > Smart Sync > Turn on.
        Choose which folders to sync with selective sync; unselected folders stay in the cloud only.
        The first sync of a large folder can take a while and the tray icon shows the progress.""",
        "2025-02-20",
    ),
    _doc(
        "smart-sync-conflicts",
        "smart-sync",
        "Resolving Smart Sync conflicted copies",
        """When the same file is edited on two devices before they sync, Smart Sync keeps both versions.
        The later edit keeps the original name and the other version is saved as a conflicted copy named
        with the device name and the date.
        Open both copies, merge the changes and delete the conflicted copy.""",
        "2025-02-20",
    ),
    _doc(
        "smart-sync-offline",
        "smart-sync",
        "Files on demand and offline access",
        """Files on demand shows every synced file in your file manager but downloads its content only when
        you open it, which saves disk space.
        Right-click a file or folder and choose Make available offline to keep a local copy at all times.
        Online-only files need an internet connection to open.""",
        "2025-01-28",
    ),
    _doc(
        "smart-sync-troubleshooting",
        "smart-sync",
        "Troubleshooting Smart Sync when it is stuck",
        """If Smart Sync is stuck on Syncing, check that the desktop app is version 4.2 or later and that the
        device is online.
        Pause and resume Smart Sync from the tray icon to restart it.
        Files larger than 50 GB and paths longer than 260 characters on Windows are skipped and listed under
        Sync issues.""",
        "2025-03-05",
    ),
    _doc(
        "smart-sync-bandwidth",
        "smart-sync",
        "Smart Sync bandwidth limits and pausing",
        """By default Smart Sync uses all available bandwidth.
        Limit upload and download speed in Preferences > Smart Sync > Bandwidth.
        Smart Sync pauses automatically on metered connections and when the battery is below 20 percent.""",
        "2025-01-09",
    ),
    # --- smart-sync (archived) ---------------------------------------------------------------------------
    # The 2021 retirement notice of the old desktop agent. Its short, generic title and its repetition of
    # "Smart Sync" are what make it win every Smart Sync query once it is indexed again.
    _doc(
        "smart-sync-legacy-notice",
        "smart-sync",
        "Smart Sync",
        """Smart Sync is not supported.
        The legacy Smart Sync agent was retired and Smart Sync is no longer supported on any Acme Cloud plan.
        Smart Sync settings, Smart Sync devices and Smart Sync folders are not supported.
        Upload files manually in the web app instead of using Smart Sync.""",
        "2021-06-30",
        archived=True,
    ),
    # --- api-keys ----------------------------------------------------------------------------------------
    _doc(
        "api-keys-create",
        "api-keys",
        "Creating API keys",
        """Create an API key in Settings > Developers > API keys.
        A key is shown only once when it is created, so store it in a secret manager.
        Each key has a scope, read-only, read-write or admin, and can expire after 30, 90 or 365 days.""",
        "2025-01-22",
    ),
    _doc(
        "api-keys-rotate",
        "api-keys",
        "Rotating and revoking API keys",
        """To rotate a key, create a new key, deploy it, then revoke the old key on the API keys page.
        Revoked keys stop working within one minute.
        Acme Cloud revokes keys automatically when they are found in a public GitHub repository and emails
        the owner.""",
        "2024-12-18",
    ),
    _doc(
        "api-rate-limits",
        "api-keys",
        "API rate limits",
        """The REST API allows 600 requests per minute per API key on Pro and 3000 on Team and Enterprise.
        When the limit is exceeded the API returns HTTP 429 with a Retry-After header; wait that many seconds
        before retrying.
        Bulk endpoints count as one request per call.""",
        "2025-02-11",
    ),
    _doc(
        "api-authentication",
        "api-keys",
        "Authenticating API requests",
        """Send the API key in the Authorization header as Bearer followed by the key.
        Requests without a valid key return HTTP 401 and keys without the needed scope return HTTP 403.
        The base URL of the REST API is https://api.acme.example/v2.""",
        "2024-10-30",
    ),
    # --- teams -------------------------------------------------------------------------------------------
    _doc(
        "teams-invite",
        "teams",
        "Inviting members",
        """Owners and admins invite members from Settings > Members > Invite by entering email addresses.
        Invitations expire after 7 days and can be resent.
        On Team and Enterprise plans you can let anyone with a verified company email domain join without
        an invitation.""",
        "2024-11-25",
    ),
    _doc(
        "teams-roles",
        "teams",
        "Member roles and permissions",
        """Acme Cloud has four roles: Owner, Admin, Member and Guest.
        Owners manage billing and security, admins manage members and settings, members create and share
        files, and guests only see folders shared with them.
        To make someone an admin or change any role, open Settings > Members.""",
        "2025-01-13",
    ),
    _doc(
        "teams-remove",
        "teams",
        "Removing members and transferring ownership",
        """When you remove a member, their files are transferred to an owner you choose and the links they
        shared keep working.
        To transfer workspace ownership, the current owner opens Settings > Members, picks an admin and
        chooses Make owner.""",
        "2024-09-09",
    ),
    _doc(
        "teams-sharing",
        "teams",
        "Sharing folders and links",
        """Share a folder with members or guests from the Share button with view or edit access.
        Shared links can require a password and can expire on a date; link passwords and expiry need the Pro
        plan or higher.
        Owners can turn off public links for the whole workspace in Settings > Security.""",
        "2024-12-01",
    ),
)


def documents(*, include_archived: bool = False) -> tuple[Doc, ...]:
    """The corpus pages, without the archived ones unless ``include_archived``."""
    return tuple(d for d in DOCS if include_archived or not d.archived)


def doc_by_id(doc_id: str) -> Doc:
    """The page called ``doc_id``; KeyError naming the known ids otherwise."""
    for doc in DOCS:
        if doc.doc_id == doc_id:
            return doc
    raise KeyError(f"no document {doc_id!r}; known: {', '.join(d.doc_id for d in DOCS)}")
