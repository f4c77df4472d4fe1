//! Which devices a definition targets, in terms of the simulated fleet: every device, device
//! ids, or the fleet's labels (the device mix: `bad-wifi`, `power-cut`, `rev-b`, `offline`, or
//! `good` for none), as hawkBit target filters, AWS thing groups or Mender device lists say.

use crate::rollout::runbook::Trouble;

/// A fleet device as selections see it.
#[derive(Debug, Clone)]
pub struct FleetDevice {
    pub id: String,
    pub trouble: Option<Trouble>,
}

impl FleetDevice {
    /// `good` or the trouble's name.
    pub fn label(&self) -> &'static str {
        self.trouble.map_or("good", Trouble::as_str)
    }

    pub fn hw_rev(&self) -> char {
        if self.trouble == Some(Trouble::RevB) {
            'b'
        } else {
            'a'
        }
    }
}

/// A device selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    All,
    /// Device ids (a glob with `*`).
    Id {
        glob: String,
        equal: bool,
    },
    /// A fleet label.
    Label {
        label: String,
        equal: bool,
    },
    HwRev {
        rev: char,
        equal: bool,
    },
    /// Every part holds.
    And(Vec<Select>),
    /// Some part holds.
    Or(Vec<Select>),
}

impl Select {
    pub fn matches(&self, d: &FleetDevice) -> bool {
        match self {
            Self::All => true,
            Self::Id { glob, equal } => fake_server::faults::glob_match(glob, &d.id) == *equal,
            Self::Label { label, equal } => (d.label() == label) == *equal,
            Self::HwRev { rev, equal } => (d.hw_rev() == *rev) == *equal,
            Self::And(parts) => parts.iter().all(|p| p.matches(d)),
            Self::Or(parts) => parts.iter().any(|p| p.matches(d)),
        }
    }
}

/// The labels a selection may name.
pub fn known_label(label: &str) -> bool {
    label == "good" || Trouble::ALL.iter().any(|t| t.as_str() == label)
}

pub const LABELS: &str = "good, bad-wifi, power-cut, rev-b, offline";
