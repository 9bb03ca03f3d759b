//! Which lines of a fleet request's reply inbox count (docs/FLEET.md, "Who answers what"),
//! sans-IO: [`super::FleetClient::request`] feeds every message here and does the waiting,
//! re-sending and deadlines.
//!
//! - An owner accepts a request (an empty message with `Wasmbed-Accepted`) once its fencing
//!   check passed; from then on only that gateway's lines (same `Wasmbed-Gateway` and
//!   `Wasmbed-Fence`) count: a stale owner woken late may still answer a copy it found queued.
//! - Of two acceptances, the newer owner's (higher fencing token) counts: it runs the request,
//!   the older one refuses it when the job leaves its queue.
//! - A line stamped with a gateway and a token but no acceptance before it comes from a gateway
//!   of an earlier version (which does not accept): it counts as its acceptance.
//! - An unstamped refusal before any acceptance (a gateway whose claim went stale) does not end
//!   the request: it is kept to explain a timeout.

use serde_json::Value;

/// Who sent a line: its `Wasmbed-Gateway` and `Wasmbed-Fence` headers.
pub type Sender = (Option<String>, Option<String>);

/// What a message means for the request.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// Nothing for the caller (an acceptance, another gateway's line, a refusal, not JSON).
    Nothing,
    /// An event of the request (progress, log).
    Event(Value),
    /// The final reply.
    Reply(Value),
}

/// The state of one request's inbox.
#[derive(Debug, Default)]
pub struct Acceptance {
    accepted: Option<Sender>,
    refused: Option<String>,
}

fn token(f: &Option<String>) -> Option<u64> {
    f.as_deref().and_then(|f| f.parse().ok())
}

impl Acceptance {
    /// Whether a gateway accepted the request.
    pub fn is_accepted(&self) -> bool {
        self.accepted.is_some()
    }

    /// The message of the last refusal heard before any acceptance.
    pub fn last_refusal(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// One message of the inbox: its sender, whether it is an acceptance, its payload.
    pub fn on_message(&mut self, from: Sender, acceptance: bool, payload: &[u8]) -> Seen {
        if acceptance {
            let newer = match &self.accepted {
                None => true,
                Some((_, cur)) => {
                    matches!((token(cur), token(&from.1)), (Some(c), Some(f)) if f > c)
                }
            };
            if newer {
                self.accepted = Some(from);
            }
            return Seen::Nothing;
        }
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return Seen::Nothing;
        };
        let event = v.get("event").is_some();
        match &self.accepted {
            Some(a) if *a != from => return Seen::Nothing,
            Some(_) => {}
            None if from.0.is_some() && from.1.is_some() => self.accepted = Some(from),
            None if event => return Seen::Nothing,
            None => {
                let message = v.pointer("/error/message").and_then(Value::as_str);
                self.refused = Some(message.unwrap_or("(no message)").to_string());
                return Seen::Nothing;
            }
        }
        if event {
            Seen::Event(v)
        } else {
            Seen::Reply(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gw(id: &str, fence: u64) -> Sender {
        (Some(id.into()), Some(fence.to_string()))
    }

    fn line(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn the_accepting_gateway_answers() {
        let mut a = Acceptance::default();
        assert_eq!(a.on_message(gw("a", 5), true, b""), Seen::Nothing);
        assert!(a.is_accepted());
        let ev = json!({"event": "progress", "id": 1});
        assert_eq!(
            a.on_message(gw("a", 5), false, &line(ev.clone())),
            Seen::Event(ev)
        );
        let r = json!({"id": 1, "ok": true});
        assert_eq!(
            a.on_message(gw("a", 5), false, &line(r.clone())),
            Seen::Reply(r)
        );
    }

    #[test]
    fn other_gateways_lines_do_not_count_once_one_accepted() {
        let mut a = Acceptance::default();
        a.on_message(gw("new", 9), true, b"");
        let stale = json!({"id": 1, "ok": false, "error": {"message": "stale"}});
        assert_eq!(
            a.on_message(gw("old", 5), false, &line(stale)),
            Seen::Nothing
        );
        assert_eq!(
            a.on_message((None, None), false, &line(json!({"id": 1, "ok": false}))),
            Seen::Nothing
        );
        // An older owner's late acceptance does not take over.
        a.on_message(gw("old", 5), true, b"");
        let r = json!({"id": 1, "ok": true});
        assert_eq!(
            a.on_message(gw("new", 9), false, &line(r.clone())),
            Seen::Reply(r)
        );
    }

    #[test]
    fn the_newer_owner_wins_of_two_acceptances() {
        let mut a = Acceptance::default();
        a.on_message(gw("old", 5), true, b"");
        a.on_message(gw("new", 9), true, b"");
        let refusal = json!({"id": 1, "ok": false, "error": {"message": "send it again"}});
        assert_eq!(
            a.on_message(gw("old", 5), false, &line(refusal)),
            Seen::Nothing
        );
        let r = json!({"id": 1, "ok": true});
        assert_eq!(
            a.on_message(gw("new", 9), false, &line(r.clone())),
            Seen::Reply(r)
        );
    }

    #[test]
    fn unstamped_refusals_before_acceptance_are_kept_not_returned() {
        let mut a = Acceptance::default();
        let refusal = json!({"id": 1, "ok": false, "error": {"message": "holds no live claim"}});
        assert_eq!(
            a.on_message((None, None), false, &line(refusal)),
            Seen::Nothing
        );
        assert_eq!(a.last_refusal(), Some("holds no live claim"));
        assert_eq!(
            a.on_message((None, None), false, &line(json!({"event": "log"}))),
            Seen::Nothing
        );
        assert_eq!(
            a.on_message((None, None), false, b"not json"),
            Seen::Nothing
        );
        assert!(!a.is_accepted());
    }

    #[test]
    fn a_stamped_line_without_acceptance_is_an_older_gateways_answer() {
        let mut a = Acceptance::default();
        let ev = json!({"event": "progress", "id": 1});
        assert_eq!(
            a.on_message(gw("old-version", 4), false, &line(ev.clone())),
            Seen::Event(ev)
        );
        assert!(a.is_accepted());
        let r = json!({"id": 1, "ok": true});
        assert_eq!(
            a.on_message(gw("old-version", 4), false, &line(r.clone())),
            Seen::Reply(r)
        );
    }
}
