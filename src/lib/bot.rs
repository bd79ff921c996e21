//! mail-bot: rules, exactly-once state and actions over the local maildir.

pub mod date;
pub mod engine;
pub mod rules;
pub mod selftest;
pub mod state;
