//! Who may call: the daemon's own user only. A method can read notes and
//! history, write files, load models and stop the daemon, so D-Bus is held
//! to what the 0600 control socket allows: every call's sender is looked
//! up on the bus (`GetConnectionUnixUser`, remembered per unique name) and
//! refused with `org.freedesktop.DBus.Error.AccessDenied` unless it runs
//! as the daemon's uid. On the session bus that is everyone who can
//! connect; on the system bus it keeps other local users out whatever the
//! bus policy says.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use zbus::message::Header;

use super::Error;

#[derive(Default)]
pub(super) struct Callers {
    /// The daemon's connection, once built (the object exists before it).
    conn: OnceLock<zbus::Connection>,
    /// Unique bus name → uid (unique names are never reused on a bus).
    known: Mutex<HashMap<String, u32>>,
}

impl Callers {
    pub(super) fn connected(&self, conn: zbus::Connection) {
        let _ = self.conn.set(conn);
    }

    /// `Ok` when the call comes from the daemon's own user.
    pub(super) async fn check(&self, header: &Header<'_>) -> Result<(), Error> {
        let own = rustix::process::getuid().as_raw();
        let sender = header
            .sender()
            .ok_or_else(|| Error::access_denied("the call has no sender".into()))?
            .to_string();
        let uid = match self.lookup(&sender) {
            Some(uid) => uid,
            None => {
                let conn = self
                    .conn
                    .get()
                    .ok_or_else(|| Error::access_denied("not connected yet".into()))?;
                let bus = zbus::fdo::DBusProxy::new(conn).await.map_err(|e| {
                    Error::access_denied(format!("cannot ask the bus who called: {e}"))
                })?;
                let name = zbus::names::BusName::try_from(sender.as_str())
                    .map_err(|e| Error::access_denied(e.to_string()))?;
                let uid = bus.get_connection_unix_user(name).await.map_err(|e| {
                    Error::access_denied(format!("cannot ask the bus who called: {e}"))
                })?;
                self.remember(sender, uid);
                uid
            }
        };
        if uid == own {
            Ok(())
        } else {
            tracing::warn!(uid, "a D-Bus call from another user was refused");
            Err(Error::access_denied(format!(
                "voxd answers only its own user (uid {own}); this call came from uid {uid}"
            )))
        }
    }

    fn lookup(&self, sender: &str) -> Option<u32> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sender)
            .copied()
    }

    fn remember(&self, sender: String, uid: u32) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() > 1024 {
            known.clear();
        }
        known.insert(sender, uid);
    }
}
