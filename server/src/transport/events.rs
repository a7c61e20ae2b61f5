//! Server-pushed events: connections that sent REGISTER receive
//! SCHEMA_CHANGE, TOPOLOGY_CHANGE and STATUS_CHANGE events.
//!
//! Every subscriber has a bounded queue; a client too slow to drain it
//! loses events (and is told so in the log) rather than growing memory.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use glommio::channels::local_channel::LocalSender;
use proto::response::{Event, SchemaChange, SchemaChangeTarget, SchemaChangeType};

use crate::schema::{self, SchemaChangeEvent};

/// What a connection's writer sends.
pub enum Outgoing {
    /// Complete envelopes; `framed`: wrap them in v5 segments.
    Frames { bytes: Vec<u8>, framed: bool },
    /// An event to encode for this connection's protocol settings.
    Event(Rc<Event>),
}

pub const EVENT_TOPOLOGY: u8 = 1;
pub const EVENT_STATUS: u8 = 2;
pub const EVENT_SCHEMA: u8 = 4;

struct Subscriber {
    id: u64,
    kinds: u8,
    tx: Rc<LocalSender<Outgoing>>,
}

/// The event subscribers of one shard.
#[derive(Default)]
pub struct EventBus {
    subscribers: RefCell<Vec<Subscriber>>,
    next_id: Cell<u64>,
}

impl EventBus {
    pub fn new() -> Self {
        EventBus::default()
    }

    /// Subscribes a connection; returns its id for [`unsubscribe`](Self::unsubscribe).
    pub fn subscribe(&self, kinds: u8, tx: Rc<LocalSender<Outgoing>>) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        self.subscribers
            .borrow_mut()
            .push(Subscriber { id, kinds, tx });
        id
    }

    pub fn unsubscribe(&self, id: u64) {
        self.subscribers.borrow_mut().retain(|s| s.id != id);
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.borrow().len()
    }

    /// Sends `event` to every subscriber of `kind`.
    pub fn publish(&self, kind: u8, event: Event) {
        let event = Rc::new(event);
        self.subscribers.borrow_mut().retain(|s| {
            if s.kinds & kind == 0 {
                return true;
            }
            match s.tx.try_send(Outgoing::Event(event.clone())) {
                Ok(()) => true,
                Err(glommio::GlommioError::Closed(_)) => false,
                Err(_) => {
                    log::warn!("event queue of connection {} is full; event dropped", s.id);
                    true
                }
            }
        });
    }

    pub fn schema_changed(&self, ev: &SchemaChangeEvent) {
        self.publish(EVENT_SCHEMA, Event::SchemaChange(to_protocol(ev)));
    }
}

/// The protocol form of a schema change.
pub fn to_protocol(ev: &SchemaChangeEvent) -> SchemaChange {
    let change = match ev.change {
        schema::SchemaChange::Created => SchemaChangeType::Created,
        schema::SchemaChange::Updated => SchemaChangeType::Updated,
        schema::SchemaChange::Dropped => SchemaChangeType::Dropped,
    };
    let target = match &ev.target {
        schema::SchemaChangeTarget::Keyspace(k) => SchemaChangeTarget::Keyspace(k.clone()),
        schema::SchemaChangeTarget::Table(k, t) => SchemaChangeTarget::Table(k.clone(), t.clone()),
        schema::SchemaChangeTarget::Type(k, t) => SchemaChangeTarget::Type(k.clone(), t.clone()),
    };
    SchemaChange { change, target }
}
