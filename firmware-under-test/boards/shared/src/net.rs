//! The network setup both apps share: an embassy-net stack configured by DHCP over the board's
//! driver, and the wait for a lease. The board brings up its own link (the Pico W joins a Wi-Fi
//! network first) and runs the stack's [`Runner`] in its own task (an embassy task cannot be
//! generic).

use embassy_net::driver::Driver;
use embassy_net::{Config, Runner, Stack, StackResources};
use embassy_time::{Duration, with_timeout};

use crate::console::LineOut;

/// A stack over `driver` that asks DHCP for its address; `seed` must differ at every boot (so
/// ports and sequence numbers never repeat the previous boot's).
pub fn dhcp_stack<D: Driver>(
    driver: D,
    resources: &'static mut StackResources<3>,
    seed: u64,
) -> (Stack<'static>, Runner<'static, D>) {
    embassy_net::new(driver, Config::dhcpv4(Default::default()), resources, seed)
}

/// Waits up to `within` for the link and a DHCP lease; once there, prints `net: address=...`
/// on `O`. `false` when the time ran out.
pub async fn lease<O: LineOut>(stack: Stack<'_>, within: Duration) -> bool {
    let leased = with_timeout(within, async {
        stack.wait_link_up().await;
        stack.wait_config_up().await;
    })
    .await
    .is_ok();
    if leased && let Some(cfg) = stack.config_v4() {
        O::line(format_args!("net: address={}", cfg.address));
    }
    leased
}
