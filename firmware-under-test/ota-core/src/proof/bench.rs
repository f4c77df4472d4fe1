//! A board's flash, built by hand: images in the slots and the factory region, a state record
//! in either copy, and a console that keeps its lines.

use crate::Version;
use crate::console::{Console, Line};
use crate::device::{Boot, Config, DEFAULT_MAX_ATTEMPTS, Device, Error, Quirks};
use crate::image::{ImageSpec, board_kind};
use crate::keys::SigningKey;
use crate::layout::{Layout, SIM};
use crate::nor::{FlashError, TestFlash};
use crate::payload::{self, Drill};
use crate::state::{self, BootState, RECORD_LEN};

pub const LAYOUT: Layout = SIM;
pub const BODY: usize = 2048;

pub fn v(major: u16) -> Version {
    Version::new(major, 0, 0)
}

/// A sim image of `body` bytes, built for `board` and signed with `key`.
pub fn image_for(
    key: &SigningKey,
    version: Version,
    counter: u32,
    board: &str,
    body: usize,
) -> Vec<u8> {
    let spec = ImageSpec {
        version,
        rollback_counter: counter,
        board: board_kind(board).expect("board kind"),
        load_addr: payload::SIM_LOAD_ADDR,
        entry_offset: 0,
    };
    crate::image::build(&spec, &payload::build(version, Drill::None, body), key)
}

/// A good sim image.
pub fn image(key: &SigningKey, version: Version, counter: u32) -> Vec<u8> {
    image_for(key, version, counter, "sim", BODY)
}

/// A console that keeps every line as printed.
#[derive(Default)]
pub struct Lines(pub Vec<String>);

impl Console for Lines {
    fn line(&mut self, line: &Line<'_>) {
        self.0.push(line.to_string());
    }
}

impl Lines {
    pub fn has(&self, line: &str) -> bool {
        self.0.iter().any(|l| l == line)
    }
}

/// A board's flash and its trusted key.
pub struct Board {
    pub key: SigningKey,
    pub flash: TestFlash,
    pub max_attempts: u8,
    pub quirks: Quirks,
}

impl Board {
    pub fn new(key: &SigningKey) -> Self {
        Self {
            key: key.clone(),
            flash: TestFlash::new(LAYOUT.flash_size as usize),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            quirks: Quirks::default(),
        }
    }

    pub fn put(&mut self, at: u32, bytes: &[u8]) {
        let at = at as usize;
        self.flash.core.mem[at..at + bytes.len()].copy_from_slice(bytes);
    }

    pub fn put_slot(&mut self, slot: u8, image: &[u8]) {
        self.put(LAYOUT.slot(slot), image);
    }

    /// Writes `st` (with its own `seq`) into state copy `copy`, bypassing the device.
    pub fn put_record(&mut self, copy: usize, st: &BootState) {
        let at = LAYOUT.state[copy] as usize;
        self.flash.core.mem[at..at + 4096].fill(0xFF);
        self.flash.core.mem[at..at + RECORD_LEN].copy_from_slice(&st.encode());
    }

    /// Flips the bits of `mask` in the byte at `addr`.
    pub fn flip(&mut self, addr: u32, mask: u8) {
        self.flash.core.mem[addr as usize] ^= mask;
    }

    pub fn config(&self) -> Config<'static> {
        Config {
            layout: LAYOUT,
            public_key: self.key.verifying_key().to_bytes(),
            board: "sim",
            max_attempts: self.max_attempts,
            quirks: self.quirks,
        }
    }

    /// The device over this board's flash.
    pub fn device(self) -> Device<'static, TestFlash> {
        let cfg = self.config();
        Device::new(self.flash, cfg)
    }

    /// Runs the bootloader once; the flash keeps what it wrote.
    pub fn boot(&mut self) -> (Result<Boot, Error<FlashError>>, Lines) {
        let flash = std::mem::replace(&mut self.flash, TestFlash::new(0));
        let mut dev = Device::new(flash, self.config());
        let mut out = Lines::default();
        let r = dev.boot(&mut out);
        self.flash = dev.flash;
        (r, out)
    }

    /// The record the bootloader reads now.
    pub fn record(&mut self) -> Option<BootState> {
        state::load(&mut self.flash, &LAYOUT).expect("read")
    }
}

/// A record with `seq`, running `active`.
pub fn record(seq: u32, active: u8, floor: u32) -> BootState {
    let mut st = BootState::factory(active, floor);
    st.seq = seq;
    st
}

/// One offer of a release to a v1 board, fed by hand: the board checks in, is offered the
/// manifest, is served `manifest`, and whatever it does until its next check-in is returned
/// as `(what it asked for, console lines)`. The server answers image requests with
/// `image` (whole, as asked).
pub fn one_offer(
    setup: &crate::sweep::Setup,
    manifest: &[u8],
    image: &[u8],
) -> (Vec<String>, Vec<String>) {
    one_offer_with(
        setup,
        manifest,
        image,
        &mut crate::updater::VecBuffers::default(),
    )
}

/// [`one_offer`] with the host's buffers `bufs`.
pub fn one_offer_with(
    setup: &crate::sweep::Setup,
    manifest: &[u8],
    image: &[u8],
    bufs: &mut dyn crate::updater::Buffers,
) -> (Vec<String>, Vec<String>) {
    use crate::http::parse_head;
    use crate::updater::{Action, Identity, Input, Io, Updater, no_board_check};

    let key = setup.key.clone();
    let mut b = Board::new(&key);
    b.flash = setup.fresh_flash();
    let mut dev = b.device();
    let mut out = Lines::default();
    let boot = dev.boot(&mut out).expect("boot");
    let app = dev.app(boot.slot);
    let who = Identity {
        device: "proof",
        boots: 1,
    };
    let mut io = Io {
        dev: &mut dev,
        bufs,
        out: &mut out,
        board_check: no_board_check,
    };
    let mut up = Updater::start(&mut io, boot, app, &who, setup.policy, 0).expect("start");
    let mut asked = Vec::new();
    let mut checkins = 0;
    let mut now = 0;
    let response = |status: u16, body: &[u8]| {
        let head = parse_head(
            format!(
                "HTTP/1.1 {status} OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .expect("head");
        (head, body.to_vec())
    };
    for _ in 0..200 {
        let reply = match up.poll_action() {
            None => break,
            Some(Action::StartNetwork) => {
                up.handle(&mut io, Input::NetworkUp, now).expect("flash");
                continue;
            }
            Some(Action::Wait { until }) => {
                now = now.max(until);
                up.handle(&mut io, Input::Timeout, now).expect("flash");
                continue;
            }
            Some(Action::SendCheckin(_)) => {
                checkins += 1;
                if checkins > 2 {
                    break;
                }
                asked.push("checkin".to_string());
                let body = if checkins == 1 {
                    &br#"{"command":"update","manifest_url":"/v1/manifest/v2"}"#[..]
                } else {
                    &br#"{"command":"none"}"#[..]
                };
                response(200, body)
            }
            Some(Action::Fetch { url, range }) => {
                asked.push(format!("fetch {url} {range:?}"));
                if url == "/v1/manifest/v2" {
                    response(200, manifest)
                } else {
                    response(200, image)
                }
            }
            Some(other) => {
                asked.push(format!("{other:?}"));
                break;
            }
        };
        let (head, body) = reply;
        up.handle(&mut io, Input::ResponseHead(head), now)
            .expect("flash");
        if !body.is_empty() {
            up.handle(&mut io, Input::BodyBytes(&body), now)
                .expect("flash");
        }
        up.handle(&mut io, Input::BodyEnd, now).expect("flash");
    }
    (asked, out.0)
}
