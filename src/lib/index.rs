//! mail-index: the notmuch index of a maildir (libnotmuch through the `notmuch` crate).
