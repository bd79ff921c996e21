//! How a session logs in: the [`Login`] trait that [`Session::connect`]
//! takes, implemented by the everyday [`Auth`] (LOGIN or XOAUTH2) and by
//! [`PlainAs`], SASL PLAIN with an authorisation identity, with which an
//! administrator's credentials open a user's mailbox (RFC 4616; Dovecot
//! master users, Cyrus and Stalwart admins).
//!
//! It does not choose between mechanisms from the server's list: the
//! caller says which one it wants.

use std::fmt;

use super::{Arg, InMemory, Session};
use crate::compose::base64_encode;
use crate::config::Secret;
use crate::error::Result;
use crate::smtp::Auth;

/// A way to log in, once the connection is secured.
pub trait Login {
    /// Logs `session` in; a refusal is an `Auth` error (exit 77).
    fn log_in(&self, session: &mut Session) -> Result<()>;
}

impl Login for Auth {
    fn log_in(&self, session: &mut Session) -> Result<()> {
        session.login(self)
    }
}

/// SASL PLAIN as `user` on behalf of `authzid`: the mailbox opened is
/// `authzid`'s, the password is `user`'s.
#[derive(Clone)]
pub struct PlainAs {
    /// Whose mailbox to open (the authorisation identity).
    pub authzid: String,
    /// Who logs in (the authentication identity: an administrator).
    pub user: String,
    /// `user`'s password.
    pub password: Secret,
}

impl fmt::Debug for PlainAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainAs")
            .field("authzid", &self.authzid)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Login for PlainAs {
    fn log_in(&self, session: &mut Session) -> Result<()> {
        let blob = format!(
            "{}\0{}\0{}",
            self.authzid,
            self.user,
            self.password.expose()
        );
        let encoded = base64_encode(blob.as_bytes());
        // With SASL-IR the response goes with the command; otherwise it
        // answers the server's empty challenge.
        let done = if session.has_capability("SASL-IR") {
            session.execute(
                &[Arg::Text(&format!("AUTHENTICATE PLAIN {encoded}"))],
                &mut InMemory,
                &mut |_| Ok(()),
            )?
        } else {
            session.tag += 1;
            let tag = format!("m{}", session.tag);
            session.write(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())?;
            match session.await_continuation(&tag)? {
                Some(done) => done,
                None => {
                    session.write(format!("{encoded}\r\n").as_bytes())?;
                    session.finish(
                        &tag,
                        &mut InMemory,
                        &mut |_| Ok(()),
                        &mut Default::default(),
                    )?
                }
            }
        };
        session.logged_in(&done)
    }
}
