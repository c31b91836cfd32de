//! Tells the node's walker what the driver learns: the host's interfaces (for its LAN address
//! and which peers share its LAN) and the resolved trackers (as bootstrap addresses of every
//! community). Runs until the driver stops.
//!
//! This belongs in the driver; it lives here until the driver does it itself (calling
//! `set_interfaces` and `add_bootstrap` again is harmless).

use dispersy::walker::{Interface, LocalInterfaces};
use dispersy_net::Handle;
use dispersy_net::interfaces::Interfaces;
use tokio::task::JoinHandle;

fn local(handle: &Handle, scan: &Interfaces) -> Option<LocalInterfaces> {
    let bound = handle.local_addrs().into_iter().next()?;
    Some(LocalInterfaces {
        bound,
        interfaces: scan
            .addresses()
            .iter()
            .map(|a| Interface::new(a.ip, a.prefix_len))
            .collect(),
    })
}

/// Starts the link; the task ends when the driver stops.
pub fn start(handle: Handle) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interfaces = handle.watch_interfaces();
        let mut told = std::collections::BTreeSet::new();
        loop {
            let scan = interfaces.borrow_and_update().clone();
            if let Some(l) = local(&handle, &scan)
                && handle
                    .call(move |node, _| node.set_interfaces(l))
                    .await
                    .is_err()
            {
                return;
            }
            for t in handle.trackers() {
                if told.insert(t) {
                    let r = handle
                        .call(move |node, now| node.add_bootstrap(now, t))
                        .await;
                    match r {
                        Err(_) => return,
                        Ok(Err(e)) => tracing::warn!(tracker = %t, error = %e, "tracker refused"),
                        Ok(Ok(())) => {}
                    }
                }
            }
            tokio::select! {
                changed = interfaces.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            }
            if handle.is_stopped() {
                return;
            }
        }
    })
}
