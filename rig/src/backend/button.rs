//! A board's recovery button pressed through a GPIO line (an open-collector transistor or a
//! relay across the button): held while the board powers on, its bootloader runs the
//! factory-reset drill. Released on drop, so a crashed run never leaves it held.

use crate::backend::relay::DigitalOutput;
use crate::board::power::Error;

pub struct RecoveryButton {
    out: Box<dyn DigitalOutput>,
    /// The button is pressed while the line is low.
    active_low: bool,
    held: bool,
}

impl RecoveryButton {
    /// Takes the line and releases the button at once.
    pub fn new(out: Box<dyn DigitalOutput>, active_low: bool) -> Result<Self, Error> {
        let mut b = Self {
            out,
            active_low,
            held: true,
        };
        b.release()?;
        Ok(b)
    }

    pub fn hold(&mut self) -> Result<(), Error> {
        self.out.set(!self.active_low)?;
        self.held = true;
        Ok(())
    }

    pub fn release(&mut self) -> Result<(), Error> {
        if self.held {
            self.out.set(self.active_low)?;
            self.held = false;
        }
        Ok(())
    }
}

impl Drop for RecoveryButton {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::error!("recovery button: cannot release it: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::relay::FakeOutput;

    #[test]
    fn polarity_and_release_on_drop() {
        let line = FakeOutput::default();
        let mut b = RecoveryButton::new(Box::new(line.clone()), true).expect("button");
        assert_eq!(line.last(), Some(true), "active-low released is high");
        b.hold().expect("hold");
        assert_eq!(line.last(), Some(false), "active-low held is low");
        drop(b);
        assert_eq!(line.last(), Some(true), "released on drop");
        let line = FakeOutput::default();
        let mut b = RecoveryButton::new(Box::new(line.clone()), false).expect("button");
        b.hold().expect("hold");
        assert_eq!(line.last(), Some(true));
        b.release().expect("release");
        assert_eq!(line.last(), Some(false));
    }
}
