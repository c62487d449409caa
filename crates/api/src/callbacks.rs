//! Which transitions each dialect reports to a task's callback URL, and with what body. The
//! store calls this inside the transition's transaction (see `reelay_store::Callbacks`).

use std::sync::Arc;

use reelay_core::{Dialect, TaskState};
use reelay_store::{CallbackMessage, Callbacks, Task};
use tokio::sync::Notify;

use crate::dialects;
use crate::dialects::quickstart::QuickstartConfig;
use crate::media::MediaLinks;

pub struct DialectCallbacks {
    wake: Arc<Notify>,
    /// Media links in payloads are signed like those the dialects answer with.
    media: MediaLinks,
    quickstart: Arc<QuickstartConfig>,
}

impl DialectCallbacks {
    /// `wake` is notified after each commit that wrote a message (the deliverers wait on it).
    pub fn new(
        wake: Arc<Notify>,
        media: MediaLinks,
        quickstart: Arc<QuickstartConfig>,
    ) -> DialectCallbacks {
        DialectCallbacks {
            wake,
            media,
            quickstart,
        }
    }
}

impl Callbacks for DialectCallbacks {
    fn message(
        &self,
        task: &Task,
        from: Option<TaskState>,
        to: TaskState,
        at_ms: i64,
    ) -> Option<CallbackMessage> {
        let url = task.spec.callback_url.clone()?;
        let c = dialects::callback(&self.media, task, from, to, at_ms)?;
        // The quick-start dialect also has its own retry schedule.
        let schedule = (task.dialect == Dialect::Quickstart)
            .then(|| self.quickstart.callback_schedule.clone());
        Some(CallbackMessage {
            url,
            event_type: c.event_type,
            payload: c.payload,
            schedule,
            hmac_subject: c.hmac_subject,
        })
    }

    fn committed(&self) {
        self.wake.notify_one();
    }
}
