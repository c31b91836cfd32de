//! Tells the node's walker the host's interfaces as the driver scans them (its LAN address, which
//! peers share its LAN, which addresses are its own). Runs until the driver stops.
//!
//! This belongs in the driver (which already hands the node its trackers); it lives here until
//! the driver does it itself (calling `set_interfaces` again is harmless).

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
            if interfaces.changed().await.is_err() || handle.is_stopped() {
                return;
            }
        }
    })
}
