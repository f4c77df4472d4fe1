//! An `embassy-net-driver` for the SMSC LAN9118 Ethernet controller, as QEMU models it on the
//! MPS2 AN385 (`-nic ...,model=lan9118`): 32-bit registers at 0x4020_0000, interrupt 13.
//!
//! The controller is FIFO based: a received frame is a status word in the RX status FIFO and
//! its bytes (plus the 4-byte FCS) in the RX data FIFO, read one 32-bit word at a time,
//! little-endian; a frame to send is two command words and its bytes written into the TX data
//! FIFO. MAC registers sit behind `MAC_CSR_CMD`/`MAC_CSR_DATA`.
//!
//! Reception is interrupt driven: the RX status FIFO level interrupt (`RSFL`) wakes the
//! network stack; everything else is polled.

use core::task::Context;

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

const BASE: usize = 0x4020_0000;
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const ID_REV: usize = 0x50;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5C;
const BYTE_TEST: usize = 0x64;
const FIFO_INT: usize = 0x68;
const RX_CFG: usize = 0x6C;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_DP_CTRL: usize = 0x78;
const RX_FIFO_INF: usize = 0x7C;
const TX_FIFO_INF: usize = 0x80;
const MAC_CSR_CMD: usize = 0xA4;
const MAC_CSR_DATA: usize = 0xA8;

/// Interrupt line of the LAN9118 on the AN385.
pub const IRQ: u16 = 13;

const IRQ_CFG_EN: u32 = 1 << 8;
const IRQ_CFG_POL_HIGH: u32 = 1 << 4;
const IRQ_CFG_PUSH_PULL: u32 = 1 << 0;
/// RX status FIFO above its level (set for every received frame with level 0).
const INT_RSFL: u32 = 1 << 3;
const HW_CFG_SRST: u32 = 1;
const TX_CFG_TX_ON: u32 = 1 << 1;
const RX_DP_FFWD: u32 = 1 << 31;
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_FDPX: u32 = 1 << 20;
/// RX status: error summary.
const RX_STS_ERROR: u32 = 1 << 15;
/// TX command A: first and last segment of a frame.
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;

/// Largest Ethernet frame without FCS.
pub const MTU: usize = 1514;
/// Buffer for a frame with its FCS, whole words.
const FRAME_BUF: usize = 1536;

static RX_WAKER: AtomicWaker = AtomicWaker::new();

fn rd(off: usize) -> u32 {
    // SAFETY: a LAN9118 register on this board's memory map.
    unsafe { core::ptr::read_volatile((BASE + off) as *const u32) }
}

fn wr(off: usize, v: u32) {
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile((BASE + off) as *mut u32, v) }
}

fn mac_wait() {
    while rd(MAC_CSR_CMD) & CSR_BUSY != 0 {}
}

fn mac_read(reg: u32) -> u32 {
    mac_wait();
    wr(MAC_CSR_CMD, CSR_BUSY | CSR_READ | reg);
    mac_wait();
    rd(MAC_CSR_DATA)
}

fn mac_write(reg: u32, v: u32) {
    mac_wait();
    wr(MAC_CSR_DATA, v);
    wr(MAC_CSR_CMD, CSR_BUSY | reg);
    mac_wait();
}

/// Why the controller could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `BYTE_TEST` / `ID_REV` are not those of a LAN9118 (no `-nic ...,model=lan9118`?).
    NotFound { id_rev: u32 },
}

/// The controller, with one frame buffer each way.
pub struct Lan9118 {
    mac: [u8; 6],
    rx: [u8; FRAME_BUF],
    tx: [u8; FRAME_BUF],
}

impl Lan9118 {
    /// Resets the controller and starts it: MAC address from its EEPROM, transmitter and
    /// receiver on, the receive interrupt enabled in the controller and the NVIC.
    pub fn new() -> Result<Self, Error> {
        let id_rev = rd(ID_REV);
        if rd(BYTE_TEST) != 0x8765_4321 || id_rev >> 16 != 0x0118 {
            return Err(Error::NotFound { id_rev });
        }
        wr(HW_CFG, HW_CFG_SRST);
        while rd(HW_CFG) & HW_CFG_SRST != 0 {}
        let lo = mac_read(MAC_ADDRL).to_le_bytes();
        let hi = mac_read(MAC_ADDRH).to_le_bytes();
        let mac = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]];
        wr(INT_EN, 0);
        wr(INT_STS, u32::MAX);
        // Active-high, push-pull: the NVIC sees a level that is high while a frame waits.
        wr(IRQ_CFG, IRQ_CFG_EN | IRQ_CFG_POL_HIGH | IRQ_CFG_PUSH_PULL);
        // RX status level 0: interrupt as soon as one frame is in.
        wr(FIFO_INT, rd(FIFO_INT) & !0xFF);
        // Frames start word aligned, no padding.
        wr(RX_CFG, 0);
        wr(TX_CFG, TX_CFG_TX_ON);
        // Exact MAC match plus broadcast (not promiscuous).
        mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX);
        wr(INT_EN, INT_RSFL);
        // SAFETY: the handler (`on_interrupt`) only touches INT_STS and the waker.
        unsafe { cortex_m::peripheral::NVIC::unmask(Irq) };
        Ok(Self {
            mac,
            rx: [0; FRAME_BUF],
            tx: [0; FRAME_BUF],
        })
    }

    /// The controller's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Frames waiting in the RX status FIFO.
    fn rx_pending() -> u32 {
        (rd(RX_FIFO_INF) >> 16) & 0xFF
    }

    /// Reads the next frame into `self.rx`: its length without FCS, or `None` for a frame the
    /// controller flagged as bad (dropped).
    fn read_frame(&mut self) -> Option<usize> {
        let status = rd(RX_STATUS_FIFO);
        let len = ((status >> 16) & 0x3FFF) as usize;
        let words = len.div_ceil(4);
        if status & RX_STS_ERROR != 0 || !(4 + 14..=FRAME_BUF).contains(&len) {
            if words >= 4 {
                wr(RX_DP_CTRL, RX_DP_FFWD);
                while rd(RX_DP_CTRL) & RX_DP_FFWD != 0 {}
            } else {
                for _ in 0..words {
                    rd(RX_DATA_FIFO);
                }
            }
            return None;
        }
        for chunk in self.rx[..words * 4].chunks_exact_mut(4) {
            chunk.copy_from_slice(&rd(RX_DATA_FIFO).to_le_bytes());
        }
        Some(len - 4)
    }
}

/// The NVIC line of the controller, for `NVIC::unmask`.
#[derive(Clone, Copy)]
struct Irq;

// SAFETY: 13 is the LAN9118's interrupt number on the AN385.
unsafe impl cortex_m::interrupt::InterruptNumber for Irq {
    fn number(self) -> u16 {
        IRQ
    }
}

/// The controller's interrupt (dispatched from the default handler): acknowledges the
/// receive interrupt and wakes the network stack.
pub fn on_interrupt() {
    wr(INT_STS, INT_RSFL);
    RX_WAKER.wake();
}

/// A received frame.
pub struct Rx<'a>(&'a mut [u8]);

/// Room for a frame to send.
pub struct Tx<'a>(&'a mut [u8; FRAME_BUF]);

impl embassy_net_driver::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl embassy_net_driver::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MTU);
        let r = f(&mut self.0[..len]);
        // The status of earlier frames is of no use: keep its FIFO from filling up.
        while (rd(TX_FIFO_INF) >> 16) & 0xFF != 0 {
            rd(TX_STATUS_FIFO);
        }
        wr(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len as u32);
        wr(TX_DATA_FIFO, len as u32);
        for chunk in self.0[..len.div_ceil(4) * 4].chunks_exact(4) {
            wr(
                TX_DATA_FIFO,
                u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            );
        }
        r
    }
}

impl embassy_net_driver::Driver for Lan9118 {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(Rx<'_>, Tx<'_>)> {
        // Register first: a frame arriving after the check below still wakes us.
        RX_WAKER.register(cx.waker());
        while Self::rx_pending() > 0 {
            if let Some(len) = self.read_frame() {
                return Some((Rx(&mut self.rx[..len]), Tx(&mut self.tx)));
            }
        }
        None
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<Tx<'_>> {
        // Room for a whole frame and its two command words (QEMU sends a frame as soon as its
        // last word is written, so the FIFO drains at once).
        if (rd(TX_FIFO_INF) & 0xFFFF) as usize >= FRAME_BUF + 8 {
            Some(Tx(&mut self.tx))
        } else {
            cx.waker().wake_by_ref();
            None
        }
    }

    fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
        // QEMU's user network is always connected.
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
