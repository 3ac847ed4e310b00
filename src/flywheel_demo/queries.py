"""The user questions of the simulated traffic: templates per feature, paraphrased, with slots.

``QUERY_MIX`` gives each feature's share of traffic (Smart Sync ~15%). A small fraction of questions
carries personal data (an email address or a phone number), as real support traffic does; the addresses
use the reserved ``example.*`` domains and the phone numbers the fictional 555-01xx range.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# Share of traffic per feature; "other" is off-topic chatter the assistant cannot answer.
QUERY_MIX: dict[str, float] = {
    "billing": 0.17,
    "sso": 0.13,
    "backups": 0.13,
    "webhooks": 0.12,
    "smart-sync": 0.15,
    "api-keys": 0.12,
    "teams": 0.15,
    "other": 0.03,
}

SLOTS: dict[str, tuple[str, ...]] = {
    "plan": ("Free", "Pro", "Team", "Enterprise"),
    "paid_plan": ("Pro", "Team", "Enterprise"),
    "idp": ("Okta", "Azure AD", "Google Workspace", "OneLogin"),
    "device": ("laptop", "desktop", "work laptop", "home PC", "MacBook"),
    "os": ("Windows", "macOS", "Linux"),
    "event": ("file.created", "file.deleted", "member.invited", "backup.completed"),
    "n": ("2", "3", "5", "10", "25"),
    "role": ("admin", "member", "guest"),
    "period": ("last week", "yesterday", "two days ago", "last month"),
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "How much does the {paid_plan} plan cost?",
        "What is the price of {paid_plan} per user per month?",
        "Is there a discount for annual billing?",
        "Where can I download my invoices?",
        "How do I get a PDF invoice for last month?",
        "Can I add our VAT number to invoices?",
        "How do I change the company address on my invoice?",
        "How do I update the credit card on file?",
        "My payment failed, what happens now?",
        "When does the workspace become read-only after a failed payment?",
        "Can we pay by bank transfer?",
        "How do I cancel my {paid_plan} plan?",
        "Do you refund monthly plans if I cancel mid-month?",
        "Can I get a refund on my annual plan, I bought it {period}?",
        "How are seats billed when I add {n} members?",
        "Do I get a credit on my invoice when I remove a seat?",
        "What plans does Acme Cloud offer?",
        "How much is Enterprise pricing?",
    ),
    "sso": (
        "How do I set up SAML single sign-on with {idp}?",
        "Is single sign-on included in the {plan} plan?",
        "Which identity providers work with SSO?",
        "What is the Assertion Consumer Service URL for SAML?",
        "How do I configure SSO with {idp}?",
        "How can I provision users automatically with SCIM from {idp}?",
        "Where do I generate a SCIM token?",
        "What happens to files when a user is deprovisioned?",
        "How do I enforce SSO for all members?",
        "Can owners still log in with a password when SSO is enforced?",
        "I get SAML response signature invalid when logging in, how do I fix it?",
        "SSO login says user not assigned, what does that mean?",
        "Our SSO broke after a certificate rotation in {idp}, what should we do?",
        "How do I turn on two-factor authentication?",
        "Can I require 2FA for everyone in the workspace?",
        "Do I need two-factor authentication if SSO is enforced?",
    ),
    "backups": (
        "How often does Acme Cloud take backups?",
        "How long are backups kept on the {plan} plan?",
        "What is the backup retention on {plan}?",
        "How do I restore a folder from a backup?",
        "I deleted a file {period}, how do I restore it?",
        "Will restoring a backup overwrite my current files?",
        "How long does restoring a whole workspace take?",
        "Can I trigger a backup myself before a migration?",
        "How many on-demand backups can I run per day?",
        "How do I export a backup to S3?",
        "Can I download a backup as a ZIP file?",
        "How long is a backup export link valid?",
        "Where are backups stored and are they encrypted?",
        "How do I recover files from the Trash?",
        "How long do deleted files stay in the Trash?",
        "Are backups available on the Free plan?",
    ),
    "webhooks": (
        "How do I create a webhook for {event} events?",
        "Which events can a webhook subscribe to?",
        "How many webhooks can a workspace have?",
        "How do I verify the X-Acme-Signature header?",
        "How do I validate webhook signatures with HMAC?",
        "How do I rotate the webhook signing secret?",
        "What happens if my endpoint is down when a webhook fires?",
        "How many times are failed webhook deliveries retried?",
        "Why was my webhook disabled?",
        "How quickly must my endpoint send a response to a webhook?",
        "What fields are in a webhook payload?",
        "I receive duplicate webhook deliveries, how do I handle them?",
        "Are webhook events delivered in order?",
        "How can I send a test webhook event?",
        "Where can I see recent webhook deliveries for debugging?",
        "Do webhooks use POST requests over HTTPS?",
    ),
    "smart-sync": (
        "How do I set up Smart Sync on my new {device}?",
        "How do I turn on Smart Sync?",
        "Is Smart Sync available on the {plan} plan?",
        "How many devices can I use with Smart Sync on {plan}?",
        "Smart Sync created a conflicted copy of my file, what should I do?",
        "How does Smart Sync handle conflicts when two people edit the same file?",
        "smart sync keeps saying conflicted copy, how do I resolve it?",
        "Smart Sync is stuck on Syncing on {os}, how do I fix it?",
        "Why is Smart Sync not syncing some files?",
        "Which desktop app version does Smart Sync need on {os}?",
        "Can I choose which folders Smart Sync syncs to my {device}?",
        "How do I make a Smart Sync folder available offline?",
        "What is files on demand in Smart Sync?",
        "How do I limit Smart Sync bandwidth?",
        "Why did Smart Sync pause on my {device}?",
        "Does SmartSync work on {os}?",
        "How do I pause and resume Smart-Sync?",
        "Smart Sync skipped a large file, why?",
    ),
    "api-keys": (
        "How do I create an API key?",
        "Can I see my API key again after creating it?",
        "What scopes can an API key have?",
        "Can API keys expire automatically?",
        "How do I rotate an API key without downtime?",
        "How do I revoke an API key?",
        "How quickly does a revoked key stop working?",
        "Why was my API key revoked automatically?",
        "What are the API rate limits on {paid_plan}?",
        "I am getting HTTP 429 from the API, what should I do?",
        "How should I handle the Retry-After header?",
        "How do I authenticate API requests?",
        "Why does the API return 401?",
        "The API returns 403 for my key, why?",
        "What is the base URL of the REST API?",
        "Do bulk endpoints count against the rate limit?",
    ),
    "teams": (
        "How do I invite {n} people to my workspace?",
        "How do I invite a new member?",
        "My invitation expired, can I resend it?",
        "Can anyone with our company email domain join automatically?",
        "What roles are available in Acme Cloud?",
        "What can a {role} do?",
        "How do I make someone an admin?",
        "What happens to files when I remove a member?",
        "How do I transfer workspace ownership?",
        "Do shared links still work after removing the person who shared them?",
        "How do I share a folder with a guest?",
        "Can I password-protect a shared link?",
        "Can shared links expire?",
        "How do I turn off public links for the whole workspace?",
        "Can guests see all folders?",
        "How do I change a member's role to {role}?",
    ),
    "other": (
        "Can you compose a poem about autumn?",
        "What is the capital of Australia?",
        "Tell me a joke",
        "Who won the football match yesterday?",
        "What's the weather like in Paris?",
        "Translate good morning into Italian",
    ),
}

_FIRST = ("jane", "john", "maria", "li", "ahmed", "sofia", "lucas", "emma", "noah", "priya")
_LAST = ("doe", "smith", "garcia", "chen", "khan", "rossi", "muller", "silva", "novak", "patel")
_DOMAINS = ("example.com", "example.org", "example.net")
_PII_SUFFIXES = (
    " My account email is {email}.",
    " You can reach me at {phone}.",
    " Please reply to {email} or call {phone}.",
)

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE_RE = re.compile(r"\+1 \d{3} 555 01\d{2}")


@dataclass(frozen=True)
class Query:
    """One user question."""

    text: str
    feature: str
    template_id: str  # "<feature>/<index>"
    has_pii: bool


def render(template: str, rng: random.Random) -> str:
    """Fill the ``{slot}`` placeholders of ``template`` with values drawn from ``rng``."""
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)


def pii_suffix(rng: random.Random) -> str:
    """A sentence with a fictional email address and/or phone number."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    email = f"{first}.{last}{rng.randrange(10, 99)}@{rng.choice(_DOMAINS)}"
    phone = f"+1 {rng.choice(('212', '415', '646', '312'))} 555 01{rng.randrange(0, 100):02d}"
    return rng.choice(_PII_SUFFIXES).format(email=email, phone=phone)


def sample_query(rng: random.Random, feature: str, *, pii_rate: float = 0.04) -> Query:
    """A question about ``feature``; with probability ``pii_rate`` it carries an email or phone number."""
    templates = TEMPLATES[feature]
    idx = rng.randrange(len(templates))
    text = render(templates[idx], rng)
    has_pii = rng.random() < pii_rate
    if has_pii:
        text += pii_suffix(rng)
    return Query(text, feature, f"{feature}/{idx}", has_pii)


def sample_feature(rng: random.Random) -> str:
    """A feature drawn from ``QUERY_MIX``."""
    return rng.choices(list(QUERY_MIX), weights=list(QUERY_MIX.values()))[0]
