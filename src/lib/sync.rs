//! mail-sync: IMAP ⇄ maildir synchronisation with per-folder state under `DIR/.mailbot/`.
