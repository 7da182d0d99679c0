"""Template support questions shared by the synthetic knowledge bases of bench_retrieval and bench_engine."""

TOPICS = (
    "password", "invoice", "refund", "subscription", "two-factor authentication", "API key", "billing address",
    "credit card", "order", "shipment", "account", "email address", "team members", "data export",
    "Slack integration", "mobile app", "notifications", "SSO login", "free trial", "plan", "VAT number",
    "receipt", "delivery address", "profile picture", "workspace", "username", "phone number", "webhook",
    "calendar sync", "CSV import", "dashboard", "reports", "audit log", "permissions", "guest access",
    "storage quota", "backup", "language settings", "time zone", "dark mode", "payment method", "coupon code",
    "gift card", "return label", "warranty", "contract", "licence key", "desktop app", "browser extension",
    "security settings", "session timeout", "password manager", "recovery codes", "domain", "DNS records",
    "SAML configuration", "user roles", "billing cycle", "tax exemption", "purchase order",
)  # fmt: skip
ACTIONS = (
    "reset", "change", "cancel", "update", "delete", "find", "download", "set up", "turn off", "recover",
    "transfer", "add", "remove", "verify", "renew", "upgrade", "export", "share", "restore", "configure",
)  # fmt: skip
TEMPLATES = (
    "How do I {a} my {t}?",
    "I can't {a} my {t}, what should I do?",
    "Where can I {a} the {t}?",
    "Is it possible to {a} the {t} from the mobile app?",
    "Why does it fail when I try to {a} my {t}?",
    "What happens to my data if I {a} the {t}?",
    "Step-by-step guide: {a} your {t}",
    "Who on my team is allowed to {a} the {t}?",
)
