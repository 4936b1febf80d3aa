//! The admin API's handlers against the in-memory backend, one module per resource:
//! answers, effects on the registry and IoT, the audit trail, and refusals that change
//! nothing.

mod support;

mod alerts;
mod commands;
mod console_reads;
mod credentials;
mod devices;
mod firmware;
mod history;
mod rollouts;
mod shadow;
