//! The events of one request's body (faults taking effect, completion), as the server reports
//! them.

use std::sync::Arc;

use crate::events::EventKind;
use crate::faults::adapters::{EventSink, Tag};
use crate::shared::Shared;

/// Reports one request's body events.
pub(crate) struct RequestSink {
    shared: Arc<Shared>,
    id: u64,
}

impl RequestSink {
    pub(crate) fn new(shared: Arc<Shared>, id: u64) -> Self {
        Self { shared, id }
    }
}

impl EventSink for RequestSink {
    fn fault(&self, tag: &Tag, bytes_sent: u64) {
        tracing::debug!(id = self.id, rule = tag.rule, action = %tag.label, bytes_sent, "fault");
        if let Some(rs) = self.shared.faults().states.get_mut(tag.rule) {
            rs.took_effect += 1;
        }
        self.shared.emit(EventKind::Fault {
            id: self.id,
            rule: tag.rule,
            action: tag.label.clone(),
            bytes_sent,
        });
    }

    fn complete(&self, bytes_sent: u64, aborted: bool) {
        self.shared.emit_with(|| EventKind::Complete {
            id: self.id,
            bytes_sent,
            aborted,
        });
    }
}
