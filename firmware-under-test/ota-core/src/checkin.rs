//! The check-in messages: `POST /v1/checkin`.
//!
//! A device checks in at boot, after confirming, and periodically. The request reports what it
//! runs; the response tells it what to do. Both are small JSON objects that a microcontroller
//! can write and parse without allocation:
//!
//! ```json
//! {"device":"sim-1","version":"1.0.0","slot":"a","state":"confirmed","boot_count":1,
//!  "last_error":null}
//! {"command":"update","manifest_url":"/v1/manifest/v2"}
//! ```
//!
//! Unknown response fields are ignored (the server may add telemetry hints later); unknown
//! `command` values are an error, so a device never guesses.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Longest device id.
pub const MAX_DEVICE_LEN: usize = 64;
/// Longest error text.
pub const MAX_ERROR_LEN: usize = 96;
/// Longest manifest URL in a response.
pub const MAX_URL_LEN: usize = 200;
/// Longest encoded request.
pub const MAX_REQUEST_LEN: usize = 512;
/// Where a device posts its check-in.
pub const CHECKIN_PATH: &str = "/v1/checkin";

/// Which slot the device runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

/// What the device's running image is, from the update's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceState {
    /// Running a confirmed image, no update in progress.
    Confirmed,
    /// Running a new image on trial: not yet confirmed.
    Trial,
    /// Downloading or staging an update.
    Updating,
    /// Running the previous image after a revert.
    Reverted,
}

impl DeviceState {
    /// The name on the wire and on the console.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Trial => "trial",
            Self::Updating => "updating",
            Self::Reverted => "reverted",
        }
    }
}

/// `s`, cut at a character boundary to the string's capacity.
pub fn bounded<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// The check-in request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinRequest {
    pub device: heapless::String<MAX_DEVICE_LEN>,
    /// `major.minor.patch` of the running image.
    pub version: heapless::String<16>,
    pub slot: Slot,
    pub state: DeviceState,
    pub boot_count: u32,
    pub last_error: Option<heapless::String<MAX_ERROR_LEN>>,
}

/// What the server tells the device to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    None,
    Update,
    Rollback,
}

impl Command {
    /// The name on the wire and on the console.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Update => "update",
            Self::Rollback => "rollback",
        }
    }
}

/// The check-in response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinResponse {
    pub command: Command,
    /// With `update`: where the signed manifest is.
    #[serde(default)]
    pub manifest_url: Option<heapless::String<MAX_URL_LEN>>,
}

/// Why a check-in message could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckinError {
    /// Not valid JSON of the expected shape.
    Malformed,
    /// An `update` without a manifest URL.
    MissingManifestUrl,
    /// The output buffer is too small.
    BufferFull,
}

impl fmt::Display for CheckinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed check-in JSON",
            Self::MissingManifestUrl => "update command without manifest_url",
            Self::BufferFull => "check-in message does not fit the buffer",
        })
    }
}

/// A string field as a device or server may send it: no control characters (a CR LF would
/// split an HTTP request line or forge a console line) and no JSON escapes (they are not
/// decoded here, so an escaped string would be taken literally).
fn plain(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != 0x7F && b != b'\\')
}

impl CheckinRequest {
    /// Writes the JSON body into `buf`, returning its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CheckinError> {
        serde_json_core::to_slice(self, buf).map_err(|_| CheckinError::BufferFull)
    }

    /// The JSON body, owned (host drivers).
    #[cfg(any(feature = "std", test))]
    pub fn to_vec(&self) -> Result<Vec<u8>, CheckinError> {
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let n = self.encode(&mut buf)?;
        Ok(buf[..n].to_vec())
    }

    /// Parses a request body (server side).
    pub fn decode(bytes: &[u8]) -> Result<Self, CheckinError> {
        let (req, _): (Self, usize) =
            serde_json_core::from_slice(bytes).map_err(|_| CheckinError::Malformed)?;
        let fields = [
            Some(&req.device[..]),
            Some(&req.version[..]),
            req.last_error.as_deref(),
        ];
        if !fields.into_iter().flatten().all(plain) {
            return Err(CheckinError::Malformed);
        }
        Ok(req)
    }
}

impl CheckinResponse {
    pub const NONE: Self = Self {
        command: Command::None,
        manifest_url: None,
    };

    /// Parses a response body (device side).
    pub fn decode(bytes: &[u8]) -> Result<Self, CheckinError> {
        let (resp, _): (Self, usize) =
            serde_json_core::from_slice(bytes).map_err(|_| CheckinError::Malformed)?;
        if resp.command == Command::Update && resp.manifest_url.is_none() {
            return Err(CheckinError::MissingManifestUrl);
        }
        // The URL goes into the device's request line and console as it is: printable ASCII
        // without spaces only.
        if resp
            .manifest_url
            .as_deref()
            .is_some_and(|u| u.is_empty() || !u.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'))
        {
            return Err(CheckinError::Malformed);
        }
        Ok(resp)
    }

    /// Writes the JSON body into `buf`, returning its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CheckinError> {
        serde_json_core::to_slice(self, buf).map_err(|_| CheckinError::BufferFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CheckinRequest {
        CheckinRequest {
            device: heapless::String::try_from("sim-1").expect("fits"),
            version: heapless::String::try_from("1.0.0").expect("fits"),
            slot: Slot::A,
            state: DeviceState::Trial,
            boot_count: 2,
            last_error: None,
        }
    }

    #[test]
    fn request_round_trips_as_json() {
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let n = request().encode(&mut buf).expect("fits");
        let text = core::str::from_utf8(&buf[..n]).expect("utf8");
        assert!(text.contains(r#""state":"trial""#), "{text}");
        assert!(text.contains(r#""slot":"a""#), "{text}");
        assert_eq!(CheckinRequest::decode(&buf[..n]), Ok(request()));
        // The owned body the host drivers send is the same bytes.
        assert_eq!(request().to_vec().as_deref(), Ok(&buf[..n]));
    }

    #[test]
    fn response_decodes_commands() {
        let r = CheckinResponse::decode(
            br#"{"command":"update","manifest_url":"/v1/manifest/v2","extra":1}"#,
        )
        .expect("valid");
        assert_eq!(r.command, Command::Update);
        assert_eq!(r.manifest_url.as_deref(), Some("/v1/manifest/v2"));
        assert_eq!(
            CheckinResponse::decode(br#"{"command":"rollback"}"#).map(|r| r.command),
            Ok(Command::Rollback)
        );
        assert_eq!(
            CheckinResponse::decode(br#"{"command":"update"}"#),
            Err(CheckinError::MissingManifestUrl)
        );
        assert_eq!(
            CheckinResponse::decode(br#"{"command":"explode"}"#),
            Err(CheckinError::Malformed)
        );
        let mut buf = [0u8; 64];
        let n = CheckinResponse::NONE.encode(&mut buf).expect("fits");
        assert_eq!(
            CheckinResponse::decode(&buf[..n]),
            Ok(CheckinResponse::NONE)
        );
    }

    #[test]
    fn strings_that_would_split_a_request_or_forge_a_line_are_refused() {
        for body in [
            "{\"command\":\"update\",\"manifest_url\":\"/v1/x\r\nboot: FATAL no bootable image\"}",
            "{\"command\":\"update\",\"manifest_url\":\"/v1/a b\"}",
            "{\"command\":\"update\",\"manifest_url\":\"\\/v1\\/manifest\"}",
            "{\"command\":\"update\",\"manifest_url\":\"\"}",
        ] {
            assert_eq!(
                CheckinResponse::decode(body.as_bytes()),
                Err(CheckinError::Malformed),
                "{body}"
            );
        }
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let n = request().encode(&mut buf).expect("fits");
        let good = core::str::from_utf8(&buf[..n]).expect("utf8").to_string();
        // A raw control character (CR, DEL), or an escape that would be taken literally.
        for bad in ["sim\r1", "sim\u{7f}1", "sim\\/1"] {
            let body = good.replace("sim-1", bad);
            assert_eq!(
                CheckinRequest::decode(body.as_bytes()),
                Err(CheckinError::Malformed),
                "{body:?}"
            );
        }
        assert_eq!(CheckinRequest::decode(good.as_bytes()), Ok(request()));
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = CheckinResponse::decode(&bytes);
            let _ = CheckinRequest::decode(&bytes);
        }
    }
}
