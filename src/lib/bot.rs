//! mail-bot: rules, exactly-once state and actions over the local maildir.
