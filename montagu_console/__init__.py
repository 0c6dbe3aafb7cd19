"""montagu-console: operator console for the Montagu database backup chain."""
