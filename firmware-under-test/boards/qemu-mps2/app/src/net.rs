//! The network: the LAN9118 (QEMU `-nic user,model=lan9118`) under embassy-net, DHCP
//! (QEMU's user network hands out 10.0.2.15).

use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use embassy_time::Duration;
use otarig_board::net;
use otarig_qemu::say;
use otarig_qemu::uart::Uart0;
use static_cell::StaticCell;

use crate::lan9118::Lan9118;

/// A lease must come within this; the app says so and keeps waiting.
const DHCP_TIMEOUT: Duration = Duration::from_secs(10);

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Lan9118>) -> ! {
    runner.run().await
}

/// Starts the controller and the stack, and waits for a DHCP lease.
pub async fn up(spawner: &Spawner) -> Stack<'static> {
    let nic = match Lan9118::new() {
        Ok(n) => n,
        Err(e) => panic!("no LAN9118 at 0x40200000 ({e:?})"),
    };
    // Different at every boot (the controller's free-running counter follows QEMU's clock),
    // so ports and sequence numbers never repeat those of the previous boot.
    let mac = nic.mac();
    let seed = u64::from(crate::free_run())
        ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x5A, 0xA5])
            .rotate_left(17);
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = net::dhcp_stack(nic, RESOURCES.init(StackResources::new()), seed);
    match net_task(runner) {
        Ok(t) => spawner.spawn(t),
        Err(_) => panic!("network task spawned twice"),
    }
    loop {
        crate::wd::FEEDING.pet();
        if net::lease::<Uart0>(stack, DHCP_TIMEOUT).await {
            return stack;
        }
        say!("net: no DHCP lease yet, still waiting");
    }
}
