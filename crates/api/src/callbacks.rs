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
        let m = &self.media;
        // Each dialect decides its body; the quick-start one also has its own retry schedule
        // and the id its kie.ai HMAC signature covers.
        let (event_type, payload, schedule, hmac_subject) = match task.dialect {
            Dialect::Runway => {
                let (t, p) = dialects::runway::callback(m, task, from, to, at_ms)?;
                (t, p, None, None)
            }
            Dialect::Reverse => {
                let (t, p) = dialects::reverse::callback(m, task, from, to, at_ms)?;
                (t, p, None, None)
            }
            Dialect::Quickstart => {
                let (t, p, subject) = dialects::quickstart::callback(m, task, to)?;
                let schedule = self.quickstart.callback_schedule.clone();
                (t, p, Some(schedule), Some(subject))
            }
            Dialect::Openai => return None,
        };
        Some(CallbackMessage {
            url,
            event_type,
            payload,
            schedule,
            hmac_subject,
        })
    }

    fn committed(&self) {
        self.wake.notify_one();
    }
}
