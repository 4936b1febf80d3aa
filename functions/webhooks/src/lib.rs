//! Alert webhooks. The alert topic feeds a fan-out queue; for every alert and every
//! subscribed hook that wants it, a delivery goes on the delivery queue. A delivery is
//! POSTed with a signature header; a failure worth retrying goes back on the queue with
//! an exponential delay, and one that never arrives ends on the dead-letter queue with
//! its reason. Each hook is retried on its own: one slow receiver never resends to others.

pub mod aws;
pub mod handler;
pub mod ports;
pub mod process;

pub use ports::{Delivery, Hooks, PostError, Poster, Queue, Undelivered};
pub use process::{alert_event, Tally, Webhooks};
